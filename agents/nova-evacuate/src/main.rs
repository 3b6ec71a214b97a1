//! `NovaEvacuate` binary: hands the description and handlers to the OCF runtime.
fn main() -> std::process::ExitCode {
    iha_ocf::run(&iha_agent_nova_evacuate::SPEC, &iha_agent_nova_evacuate::NovaEvacuate)
}
