//! The `twip` binary: parse the command line, hand it to the library, exit with its code.

fn main() {
    // Behave like other command-line tools when the reader of stdout goes away
    // (`twip status | head`): end quietly instead of failing to print.
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A bug must not greet the user with a Rust backtrace: one line, and where to report it.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error in twip: {msg}{at}; this is a bug, please report it");
    }));
    let code = twip::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
