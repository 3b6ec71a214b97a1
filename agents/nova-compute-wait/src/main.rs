//! `nova-compute-wait` binary: hands the description and handlers to the OCF runtime.
fn main() -> std::process::ExitCode {
    iha_ocf::run(&iha_agent_nova_compute_wait::SPEC, &iha_agent_nova_compute_wait::NovaComputeWait)
}
