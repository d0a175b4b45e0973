fn main() {
    std::process::exit(chatops::commands::main());
}
