pub fn run() -> anyhow::Result<i32> {
    todo!()
}
