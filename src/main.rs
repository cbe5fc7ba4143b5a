fn main() -> std::process::ExitCode {
    nightjar::cli::main()
}
