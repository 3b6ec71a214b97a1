//! Read-only smoke test against a real cloud, configured from `OS_*` (or
//! `OS_CLOUD`): prints what each agent-facing call returns and how long it
//! took. Run it twice to see the token cache at work (the second run makes
//! no Keystone request and no version discovery).
//!
//! `cargo run -p iha-openstack --example os-smoke` with the lab's openrc
//! variables exported. `IHA_DEBUG=1` prints every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iha_openstack::{
    AuthParams, Client, ComputeApi, ConnectionOptions, Deadline, ImageQuery, Level, MigrationQuery,
    ServiceQuery,
};

fn main() {
    let debug = std::env::var_os("IHA_DEBUG").is_some();
    let opts = match ConnectionOptions::from_process_env(AuthParams::default()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("os-smoke: {e}");
            std::process::exit(2);
        }
    };
    let opts = opts.with_logger(Arc::new(move |level: Level, m: &str| {
        if debug || level >= Level::Info {
            eprintln!("{level:?}: {m}");
        }
    }));
    let start = Instant::now();
    let nova = Client::new(opts).with_deadline(Deadline::after(Duration::from_secs(60)));
    let step = |name: &str, r: Result<String, iha_openstack::Error>| match r {
        Ok(s) => println!("{name:<12} {:>6} ms  {s}", start.elapsed().as_millis()),
        Err(e) => println!(
            "{name:<12} {:>6} ms  ERROR {e}",
            start.elapsed().as_millis()
        ),
    };
    step(
        "versions",
        nova.api_versions().map(|v| format!("{}..{}", v.min, v.max)),
    );
    let services = nova.list_services(&ServiceQuery {
        binary: Some("nova-compute".into()),
        host: None,
    });
    step(
        "services",
        services.as_ref().map_err(Clone::clone).map(|s| {
            s.iter()
                .map(|s| {
                    format!(
                        "{}={}/{}{}",
                        s.host,
                        s.state.as_deref().unwrap_or("?"),
                        s.status,
                        if s.forced_down == Some(true) {
                            "/forced"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    step(
        "hypervisors",
        nova.list_hypervisors().map(|h| {
            h.iter()
                .map(|h| h.hypervisor_hostname.clone())
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    if let Ok(services) = &services {
        for s in services {
            step(
                "servers",
                nova.list_servers_on_host(&s.host)
                    .map(|v| format!("{}: {}", s.host, v.len())),
            );
        }
    }
    step(
        "flavors",
        nova.list_flavors().map(|f| {
            f.iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    step(
        "images",
        nova.list_images(&ImageQuery::default())
            .map(|i| format!("{}", i.len())),
    );
    step(
        "aggregates",
        nova.list_aggregates().map(|a| format!("{}", a.len())),
    );
    step(
        "migrations",
        nova.list_migrations(&MigrationQuery {
            migration_type: Some("evacuation".into()),
            ..Default::default()
        })
        .map(|m| format!("{}", m.len())),
    );
}
