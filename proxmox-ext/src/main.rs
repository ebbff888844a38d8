fn main() -> std::process::ExitCode {
    ext_sdk::run(&proxmox_ext::META, proxmox_ext::handle)
}
