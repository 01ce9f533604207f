//! The response: the head parser and the incremental chunked-body decoder. Written by hand for
//! the load generator's hot path; the simple client reads its replies with them too.

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the status line and headers, final blank line included.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The connection cannot be reused after this response.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    Invalid,
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more bytes are needed.
/// `head_only`: the request was HEAD, so no body follows whatever the headers say.
///
/// Written by hand for speed: it checks the status line strictly, splits the header lines
/// and looks only at the three headers that frame the message (`Content-Length`,
/// `Transfer-Encoding`, `Connection`). Lines may end in CRLF or a bare LF; folded header
/// lines (obsolete) and lines without a colon are invalid.
pub fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, ParseError> {
    let Some(eol) = memchr::memchr(b'\n', buf) else {
        return partial_status_line(buf);
    };
    let line = strip_cr(&buf[..eol]);
    // HTTP/1.x SSS[ reason]
    if line.len() < 12
        || &line[..7] != b"HTTP/1."
        || !matches!(line[7], b'0' | b'1')
        || line[8] != b' '
        || !line[9..12].iter().all(u8::is_ascii_digit)
        || (line.len() > 12 && line[12] != b' ')
    {
        return Err(ParseError::Invalid);
    }
    let http10 = line[7] == b'0';
    let status = line[9..12]
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
    let mut pos = eol + 1;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut conn_close = false;
    let mut conn_keepalive = false;
    let len = loop {
        let Some(rel) = memchr::memchr(b'\n', &buf[pos..]) else {
            return Ok(None);
        };
        let line = strip_cr(&buf[pos..pos + rel]);
        pos += rel + 1;
        if line.is_empty() {
            break pos;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(ParseError::Invalid);
        };
        let name = &line[..colon];
        if name.is_empty() || name[0] == b' ' || name[0] == b'\t' || name.ends_with(b" ") {
            return Err(ParseError::Invalid);
        }
        let value = &line[colon + 1..];
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let v = trim(value);
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 19 {
                    return Err(ParseError::Invalid);
                }
                let n = v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
                if length.is_some_and(|l| l != n) {
                    return Err(ParseError::Invalid);
                }
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // Chunked is the last coding when present (RFC 9112 6.1).
                let v = trim(value);
                chunked = v.len() >= 7 && v[v.len() - 7..].eq_ignore_ascii_case(b"chunked");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let t = trim(token);
                    if t.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keepalive = true;
                    }
                }
            }
            _ => {}
        }
    };
    let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let close = conn_close || (http10 && !conn_keepalive) || framing == Framing::UntilClose;
    Ok(Some(Head {
        len,
        status,
        framing,
        close,
    }))
}

/// Whether an incomplete first line can still become a status line.
fn partial_status_line(buf: &[u8]) -> Result<Option<Head>, ParseError> {
    let n = buf.len().min(7);
    if buf[..n] != b"HTTP/1."[..n] {
        return Err(ParseError::Invalid);
    }
    Ok(None)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Decodes a chunked body incrementally, counting its data bytes and finding its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    size_digits: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size.
    #[default]
    Size,
    /// After the size: extensions, until LF.
    SizeLine,
    Data,
    /// CRLF after data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one. `line_empty` tracks that.
    Trailer {
        line_empty: bool,
    },
    Done,
}

/// What [`Chunked::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// Data bytes (without the chunk framing) in what was consumed.
    pub data: u64,
    pub done: bool,
}

impl Chunked {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, buf: &[u8]) -> Result<Fed, ParseError> {
        let mut i = 0;
        let mut data = 0u64;
        while i < buf.len() {
            match self.state {
                ChunkState::Size => {
                    let b = buf[i];
                    if let Some(d) = (b as char).to_digit(16) {
                        self.size_digits += 1;
                        if self.size_digits > 15 {
                            return Err(ParseError::Invalid);
                        }
                        self.size = self.size * 16 + u64::from(d);
                        i += 1;
                    } else if self.size_digits == 0 {
                        return Err(ParseError::Invalid);
                    } else {
                        self.state = ChunkState::SizeLine;
                    }
                }
                ChunkState::SizeLine => match memchr_lf(&buf[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.size_digits = 0;
                        self.state = if self.size == 0 {
                            ChunkState::Trailer { line_empty: true }
                        } else {
                            ChunkState::Data
                        };
                    }
                    None => i = buf.len(),
                },
                ChunkState::Data => {
                    let take = (self.size).min((buf.len() - i) as u64);
                    self.size -= take;
                    data += take;
                    i += take as usize;
                    if self.size == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    match buf[i] {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err(ParseError::Invalid),
                    }
                    i += 1;
                }
                ChunkState::Trailer { line_empty } => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' if line_empty => {
                            self.state = ChunkState::Done;
                            return Ok(Fed {
                                consumed: i,
                                data,
                                done: true,
                            });
                        }
                        b'\n' => self.state = ChunkState::Trailer { line_empty: true },
                        b'\r' => {}
                        _ => self.state = ChunkState::Trailer { line_empty: false },
                    }
                }
                ChunkState::Done => {
                    return Ok(Fed {
                        consumed: i,
                        data,
                        done: true,
                    })
                }
            }
        }
        Ok(Fed {
            consumed: i,
            data,
            done: self.state == ChunkState::Done,
        })
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!(h.len, r.len() - 5);
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(!h.close);
        assert_eq!(parse_head(&r[..20], false), Ok(None));
        let h = parse_head(r, true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::None);

        let r = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive, Close\r\n\r\n";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (500, Framing::Chunked, true)
        );

        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
        assert!(parse_head(r, false).unwrap().unwrap().close);
        let r = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n";
        assert!(!parse_head(r, false).unwrap().unwrap().close);

        let r = b"HTTP/1.1 200 OK\r\n\r\n";
        let h = parse_head(r, false).unwrap().unwrap();
        assert_eq!((h.framing, h.close), (Framing::UntilClose, true));

        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            parse_head(r, false).unwrap().unwrap().framing,
            Framing::None
        );
        let r = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            parse_head(r, false).unwrap().unwrap().framing,
            Framing::None
        );

        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(
            parse_head(b"SSH-2.0", false).is_err(),
            "garbage fails early"
        );
        assert_eq!(parse_head(b"HTTP/1", false), Ok(None));
        assert!(parse_head(b"HTTP/2 200 OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 20 OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200OK\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", false).is_err());
        // A status line without a reason, bare LFs, and a partial head.
        let h = parse_head(b"HTTP/1.1 404\nContent-Length: 3\n\nabc", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.len, h.framing), (404, 32, Framing::Length(3)));
        let full = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 330\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_head(&full[..cut], false), Ok(None), "cut at {cut}");
        }
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
    }

    #[test]
    fn chunked_in_one_piece_and_byte_by_byte() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut c = Chunked::new();
        let f = c.feed(body).unwrap();
        assert!(f.done);
        assert_eq!(f.data, 23);
        assert_eq!(&body[f.consumed..], b"NEXT");

        let mut c = Chunked::new();
        let mut data = 0;
        let mut consumed = 0;
        for (i, b) in body.iter().enumerate() {
            let f = c.feed(std::slice::from_ref(b)).unwrap();
            data += f.data;
            consumed += f.consumed;
            if f.done {
                assert_eq!(i, body.len() - 5);
                break;
            }
        }
        assert_eq!((data, consumed), (23, body.len() - 4));
    }

    #[test]
    fn chunked_without_trailer_and_bad_input() {
        let mut c = Chunked::new();
        let f = c.feed(b"3\r\nabc\r\n0\r\n\r\n").unwrap();
        assert_eq!((f.data, f.done), (3, true));
        assert!(Chunked::new().feed(b"zz\r\n").is_err());
        assert!(Chunked::new().feed(b"1\r\naXY").is_err());
        let mut c = Chunked::new();
        let f = c.feed(b"10\r\n0123").unwrap();
        assert_eq!((f.data, f.done, f.consumed), (4, false, 8));
    }
}
