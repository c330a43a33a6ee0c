//! A plain WASI p2 command that knows nothing of memory blocks.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("hello from wasi: args={args:?}");
    if let Ok(v) = std::env::var("GREETING") {
        println!("GREETING={v}");
    }
    if args.iter().any(|a| a == "--fail") {
        std::process::exit(3);
    }
}
