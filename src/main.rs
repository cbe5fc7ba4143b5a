#[global_allocator]
static ALLOCATOR: nightjar::alloc::LargeBlocksOnHugePages = nightjar::alloc::LargeBlocksOnHugePages;

fn main() -> std::process::ExitCode {
    nightjar::cli::main()
}
