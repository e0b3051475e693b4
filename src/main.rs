use clap::Parser;

// glibc's malloc was a fifth of the service's CPU under load (threads contending for arenas,
// consolidating on free); mimalloc keeps per-thread heaps. Measured in README "Benchmark".
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's own API, linked in by the `mimalloc` crate.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    // libc's: `std::env` would allocate, and the point is to run before the first allocation.
    fn getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char;
}

/// `mi_option_arena_eager_commit` in mimalloc.h.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// On Linux mimalloc commits its arenas up front by default, and under load that leaves the
/// peak RSS 15-20 MiB higher (62-72 MiB against 30 MiB under `bench ingest`, for the same
/// throughput; README "Ingest levers"). The first allocation creates the first arena, which is
/// before `main`, so this runs from `.init_array`, as the loader starts the process.
/// MIMALLOC_ARENA_EAGER_COMMIT, when set, still wins.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static LAZY_ARENA_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_arena_commit() {
        // SAFETY: reads the environment and sets an integer option before any allocation,
        // while no other thread exists.
        unsafe {
            if getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
                mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
            }
        }
    }
    lazy_arena_commit
};

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aap-bridge: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = aap_bridge::cli::Cli::parse();
    match runtime.block_on(aap_bridge::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aap-bridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
