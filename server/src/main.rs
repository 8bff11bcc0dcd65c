fn main() -> std::process::ExitCode {
    promio_server::cli::main()
}
