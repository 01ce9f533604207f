//! The `twip` binary: parse the command line, hand it to the library, exit with its code.

fn main() {
    // Behave like other command-line tools when the reader of stdout goes away
    // (`twip status | head`): end quietly instead of failing to print.
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A bug must not greet the user with a Rust backtrace: one line, where to report it, 70.
    twip::install_panic_hook();
    let code = twip::main_on_large_stack(std::env::args_os().collect());
    std::process::exit(code);
}
