//! `fence_compute` binary: hands the description and handlers to the fence runtime.
fn main() -> std::process::ExitCode {
    iha_fence::run(&iha_agent_fence_compute::SPEC, &iha_agent_fence_compute::FenceCompute)
}
