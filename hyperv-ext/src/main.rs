fn main() -> std::process::ExitCode {
    ext_sdk::run(&hyperv_ext::META, hyperv_ext::handle)
}
