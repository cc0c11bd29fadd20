// mimalloc in place of glibc's malloc: a request allocates and frees many
// small blocks (headers, JSON, rows), and glibc's free lists and
// consolidation were about a tenth of a request's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    roster::cli::main()
}
