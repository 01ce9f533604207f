//! The operator's terminal as an attached command needs it: whether a stream is a terminal,
//! its size, and raw mode (keys go to the command as typed: Ctrl-C to its terminal, not to
//! twip), restored when the guard is dropped.

use std::os::fd::RawFd;

pub const STDIN: RawFd = libc::STDIN_FILENO;
pub const STDOUT: RawFd = libc::STDOUT_FILENO;

/// Whether FD is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only reads the descriptor's state.
    unsafe { libc::isatty(fd) == 1 }
}

/// The size of the terminal at FD as (columns, rows), when it is one and says.
pub fn size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The terminal at FD in raw mode until dropped (also when the command fails or twip panics:
/// the guard's drop runs while the stack unwinds).
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal at FD in raw mode (as `cfmakeraw`), keeping its settings to restore.
    pub fn enter(fd: RawFd) -> std::io::Result<RawMode> {
        // SAFETY: tcgetattr fills the termios we own; cfmakeraw and tcsetattr read it.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read by `enter` on the same descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_not_a_terminal_and_has_no_size() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors, closed below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert!(!is_terminal(fds[0]));
        assert_eq!(size(fds[1]), None);
        assert!(RawMode::enter(fds[0]).is_err());
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    fn lflag(fd: RawFd) -> libc::tcflag_t {
        // SAFETY: reads the terminal's settings into a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(fd, &mut t), 0);
            t.c_lflag
        }
    }

    #[test]
    fn raw_mode_is_entered_and_restored_on_a_pseudo_terminal() {
        let (mut master, mut slave) = (0, 0);
        let ws = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills the two descriptors (closed below) from the size we own.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(r, 0, "openpty");
        assert!(is_terminal(slave));
        assert_eq!(size(slave), Some((101, 33)));
        let before = lflag(slave);
        assert_ne!(before & libc::ICANON, 0, "a new terminal is canonical");
        {
            let _raw = RawMode::enter(slave).unwrap();
            assert_eq!(lflag(slave) & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        }
        assert_eq!(lflag(slave), before, "restored when the guard is dropped");
        // Also when the code holding the guard panics.
        let caught = std::panic::catch_unwind(|| {
            let _raw = RawMode::enter(slave).unwrap();
            panic!("the command failed");
        });
        assert!(caught.is_err());
        assert_eq!(lflag(slave), before, "restored while a panic unwinds");
        unsafe {
            libc::close(master);
            libc::close(slave);
        }
    }
}
