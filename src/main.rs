//! The `twip` binary: parse the command line, hand it to the library, exit with its code.

fn main() {
    let code = twip::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
