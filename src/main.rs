fn main() {
    std::process::exit(chatops::app::main());
}
