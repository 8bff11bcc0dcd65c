fn main() -> std::process::ExitCode {
    promio_server::edge::cli::main()
}
