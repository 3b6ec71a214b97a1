//! Which instances of a failed host are evacuated, in what order, and why.
//!
//! The reference's rules (REFERENCE.md §4.4) and ours, in order of precedence, the most
//! specific first:
//!
//! 1. **Server opt-out / opt-in**: server metadata `<server_key>` (default
//!    `instance-ha:evacuate`) `false` excludes the instance, `true` includes it; a server tag
//!    `<opt_out_tag>` excludes it, a server tag `<tag>` includes it. Honoured even with
//!    `instance_filtering=false`: an owner's explicit "no" wins.
//! 2. `instance_filtering=false`: every other instance is evacuated (O12: the reference cannot
//!    turn filtering off).
//! 3. **Host aggregates**: if any aggregate in the cloud has metadata `<tag>`, only hosts in an
//!    aggregate with `<tag>=true` are evacuated (fail-closed, as Red Hat InstanceHA); an
//!    aggregate with `<tag>=false` excludes its hosts.
//! 4. **Flavor and image** (the reference): a flavor with extra spec `<tag>=true` (public and
//!    private flavors; the 2.47+ embedded copy in the server is read first, so no call per
//!    flavor is needed) or an image with the Glance tag `<tag>` or the property `<tag>=true`
//!    (O11: the reference ignores properties). Boot-from-volume instances (image `""`) are
//!    judged by flavor only. If no flavor and no image in the whole cloud is marked, every
//!    instance is evacuated (the reference's OSP 8 compatibility).
//!
//! Values compare as the reference does: trimmed, case-insensitive `true`.
//!
//! The order: the priority (integer) from server metadata `<priority_key>`, else the flavor's
//! extra spec `<priority_key>`, default 0, higher first; then name and id, so the order is
//! stable across runs.

use crate::fanout::{join, parallel};
use iha_openstack::{ComputeApi, Error, Image, ImageQuery, Server};
use std::collections::{BTreeMap, BTreeSet};

/// Flavor extra-spec reads in flight at once for one host (clouds before 2.61 only).
pub const EXTRA_SPECS_READS: usize = 8;

/// A flavor's extra specs.
type Specs = BTreeMap<String, String>;

/// The configurable keys and switches of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `instance_filtering`: false evacuates every instance (except explicit opt-outs).
    pub filtering: bool,
    /// Flavor extra spec, image tag and property, aggregate metadata key, server tag.
    pub tag: String,
    /// Server metadata key whose `true`/`false` opts a server in or out.
    pub server_key: String,
    /// Server tag that opts a server out.
    pub opt_out_tag: String,
    /// Server metadata / flavor extra spec holding an integer priority (higher first).
    pub priority_key: String,
    /// Whether host aggregates are consulted.
    pub aggregates: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            filtering: true,
            tag: "evacuable".into(),
            server_key: "instance-ha:evacuate".into(),
            opt_out_tag: "instance-ha:no-evacuate".into(),
            priority_key: "instance-ha:priority".into(),
            aggregates: true,
        }
    }
}

/// The verdict on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub evacuate: bool,
    /// Why, in words an operator understands.
    pub why: String,
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn is_false(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

/// The policy, with what it needs from the cloud already fetched for one host.
#[derive(Debug, Clone)]
pub struct Selector {
    cfg: PolicyConfig,
    /// Extra specs of every flavor, by id (for servers before 2.47).
    flavor_specs: BTreeMap<String, BTreeMap<String, String>>,
    /// Images marked evacuable.
    images: BTreeSet<String>,
    /// Whether any flavor or image in the cloud is marked.
    anything_marked: bool,
    /// The aggregate verdict on the host: `None` when no aggregate carries the key.
    host_verdict: Option<Decision>,
}

impl Selector {
    /// Fetches flavors (with extra specs), images and aggregates once, for `host`: the three
    /// lists at once, and on clouds before 2.61 the extra specs of up to
    /// [`EXTRA_SPECS_READS`] flavors at once.
    pub fn prepare(nova: &dyn ComputeApi, cfg: &PolicyConfig, host: &str) -> Result<Selector, Error> {
        let mut sel = Selector {
            cfg: cfg.clone(),
            flavor_specs: BTreeMap::new(),
            images: BTreeSet::new(),
            anything_marked: false,
            host_verdict: None,
        };
        let (flavors, images, aggregates) = std::thread::scope(|sc| {
            let images = cfg.filtering.then(|| sc.spawn(|| Self::images(nova, cfg)));
            let aggregates = (cfg.filtering && cfg.aggregates).then(|| sc.spawn(|| nova.list_aggregates()));
            // Priorities may live in flavor extra specs, so flavors are read even without filtering.
            let flavors = Self::flavor_specs(nova);
            (flavors, images.map(join), aggregates.map(join))
        });
        for (id, specs) in flavors? {
            sel.anything_marked |= is_true(specs.get(&cfg.tag));
            sel.flavor_specs.insert(id, specs);
        }
        if let Some(images) = images {
            for img in images? {
                let marked = img.tags.iter().any(|t| t == &cfg.tag) || is_true(img.property(&cfg.tag).as_ref());
                if marked {
                    sel.anything_marked = true;
                    sel.images.insert(img.id);
                }
            }
        }
        if let Some(aggs) = aggregates {
            let aggs = aggs?;
            let tagged: Vec<_> = aggs.iter().filter(|a| a.metadata.contains_key(&cfg.tag)).collect();
            if !tagged.is_empty() {
                let mine: Vec<_> = tagged.iter().filter(|a| a.hosts.iter().any(|h| h == host)).collect();
                let verdict = if let Some(a) = mine.iter().find(|a| is_false(a.metadata.get(&cfg.tag))) {
                    Decision { evacuate: false, why: format!("host {host} is in aggregate {} with {}=false", a.name, cfg.tag) }
                } else if let Some(a) = mine.iter().find(|a| is_true(a.metadata.get(&cfg.tag))) {
                    Decision { evacuate: true, why: format!("host {host} is in evacuable aggregate {}", a.name) }
                } else {
                    Decision {
                        evacuate: false,
                        why: format!("aggregates carry {} but host {host} is in no aggregate with {}=true", cfg.tag, cfg.tag),
                    }
                };
                sel.host_verdict = Some(verdict);
            }
        }
        Ok(sel)
    }

    /// Every flavor's extra specs, by id.
    fn flavor_specs(nova: &dyn ComputeApi) -> Result<Vec<(String, Specs)>, Error> {
        let mut known = Vec::new();
        let mut missing = Vec::new();
        for f in nova.list_flavors()? {
            match f.extra_specs {
                Some(s) => known.push((f.id, s)),
                // Before 2.61 the list has no extra specs: one call per flavor, as the reference.
                None => missing.push(f.id),
            }
        }
        for r in parallel(missing, EXTRA_SPECS_READS, None, |id| nova.flavor_extra_specs(&id).map(|s| (id, s))) {
            known.push(r?);
        }
        Ok(known)
    }

    /// Every image (every page, O11), tags and properties both. A cloud without an image
    /// service in its catalog has no marked image; any other failure is reported (and
    /// retried later).
    fn images(nova: &dyn ComputeApi, cfg: &PolicyConfig) -> Result<Vec<Image>, Error> {
        match nova.list_images(&ImageQuery::default()) {
            Ok(i) => Ok(i),
            Err(Error::Unsupported { message }) => {
                log::warn!("images cannot be listed ({message}); no image counts as marked {}", cfg.tag);
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// A selector that evacuates everything (tests, `instance_filtering=false` without a cloud).
    pub fn everything(cfg: &PolicyConfig) -> Selector {
        Selector {
            cfg: PolicyConfig { filtering: false, ..cfg.clone() },
            flavor_specs: BTreeMap::new(),
            images: BTreeSet::new(),
            anything_marked: false,
            host_verdict: None,
        }
    }

    fn specs<'a>(&'a self, s: &'a Server) -> Option<&'a BTreeMap<String, String>> {
        s.flavor.extra_specs.as_ref().or_else(|| s.flavor.id.as_ref().and_then(|id| self.flavor_specs.get(id)))
    }

    fn flavor_name(s: &Server) -> String {
        s.flavor.original_name.clone().or_else(|| s.flavor.id.clone()).unwrap_or_else(|| "?".into())
    }

    /// Decides for one server.
    pub fn decide(&self, s: &Server) -> Decision {
        let c = &self.cfg;
        let yes = |why: String| Decision { evacuate: true, why };
        let no = |why: String| Decision { evacuate: false, why };
        if is_false(s.metadata.get(&c.server_key)) {
            return no(format!("server metadata {}=false", c.server_key));
        }
        let tags = s.tags.as_deref().unwrap_or(&[]);
        if tags.iter().any(|t| t == &c.opt_out_tag) {
            return no(format!("server tag {}", c.opt_out_tag));
        }
        if is_true(s.metadata.get(&c.server_key)) {
            return yes(format!("server metadata {}=true", c.server_key));
        }
        if tags.iter().any(|t| t == &c.tag) {
            return yes(format!("server tag {}", c.tag));
        }
        if !c.filtering {
            return yes("instance_filtering is off".into());
        }
        if let Some(v) = &self.host_verdict {
            if !v.evacuate {
                return v.clone();
            }
        }
        let flavor = Self::flavor_name(s);
        if !self.anything_marked {
            return match &self.host_verdict {
                Some(v) => yes(format!("{}; no flavor or image is marked {}", v.why, c.tag)),
                None => yes(format!("no flavor or image in the cloud is marked {}: every instance is evacuated", c.tag)),
            };
        }
        if is_true(self.specs(s).and_then(|m| m.get(&c.tag))) {
            return yes(format!("flavor {flavor} has {}=true", c.tag));
        }
        match &s.image {
            Some(img) if self.images.contains(img) => yes(format!("image {img} is marked {}", c.tag)),
            Some(img) => no(format!("neither flavor {flavor} nor image {img} is marked {}", c.tag)),
            None => no(format!("flavor {flavor} is not marked {} (boot from volume: no image)", c.tag)),
        }
    }

    /// The server's priority: metadata, then flavor extra spec, else 0; higher goes first.
    pub fn priority(&self, s: &Server) -> i64 {
        let key = &self.cfg.priority_key;
        let parse = |v: Option<&String>| v.and_then(|v| v.trim().parse::<i64>().ok());
        parse(s.metadata.get(key)).or_else(|| parse(self.specs(s).and_then(|m| m.get(key)))).unwrap_or(0)
    }

    /// Sorts servers: priority (higher first), then name, then id.
    pub fn order(&self, servers: &mut [Server]) {
        servers.sort_by(|a, b| {
            self.priority(b).cmp(&self.priority(a)).then_with(|| a.name.cmp(&b.name)).then_with(|| a.id.cmp(&b.id))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeNova;

    fn server(id: &str, flavor: &str, image: Option<&str>) -> Server {
        let mut s = FakeNova::server(id, "dead");
        s.flavor.id = Some(flavor.into());
        s.image = image.map(str::to_owned);
        s
    }

    #[test]
    fn nothing_marked_means_everything() {
        let nova = FakeNova::new();
        nova.add_flavor("small", &[]);
        let sel = Selector::prepare(&nova, &PolicyConfig::default(), "dead").unwrap();
        let d = sel.decide(&server("a", "small", Some("img")));
        assert!(d.evacuate);
        assert!(d.why.contains("every instance"), "{}", d.why);
    }

    #[test]
    fn flavor_image_tag_and_property() {
        let nova = FakeNova::new();
        nova.add_flavor("ha", &[("evacuable", " True ")]);
        nova.add_flavor("plain", &[]);
        nova.add_flavor("private-ha", &[("evacuable", "true")]);
        nova.add_image("tagged", &["evacuable"], &[]);
        nova.add_image("prop", &[], &[("evacuable", "true")]);
        nova.add_image("other", &[], &[]);
        let sel = Selector::prepare(&nova, &PolicyConfig::default(), "dead").unwrap();
        assert!(sel.decide(&server("1", "ha", Some("other"))).evacuate);
        assert!(sel.decide(&server("2", "private-ha", None)).evacuate);
        assert!(sel.decide(&server("3", "plain", Some("tagged"))).evacuate);
        assert!(sel.decide(&server("4", "plain", Some("prop"))).evacuate);
        let d = sel.decide(&server("5", "plain", Some("other")));
        assert!(!d.evacuate);
        assert!(d.why.contains("neither flavor plain nor image other"), "{}", d.why);
        let d = sel.decide(&server("6", "plain", None));
        assert!(!d.evacuate && d.why.contains("boot from volume"), "{}", d.why);
        // 2.47+: the embedded flavor copy is read, no id needed.
        let mut embedded = server("7", "x", Some("other"));
        embedded.flavor.id = None;
        embedded.flavor.original_name = Some("ha-embedded".into());
        embedded.flavor.extra_specs = Some([("evacuable".to_string(), "true".to_string())].into());
        assert!(sel.decide(&embedded).evacuate);
    }

    #[test]
    fn extra_specs_fetched_per_flavor_only_when_the_list_lacks_them() {
        let nova = FakeNova::new();
        nova.add_flavor("ha", &[("evacuable", "true")]);
        nova.hide_flavor_specs_in_list();
        let sel = Selector::prepare(&nova, &PolicyConfig::default(), "dead").unwrap();
        assert!(sel.decide(&server("1", "ha", None)).evacuate);
        assert_eq!(nova.calls("flavor_extra_specs"), 1);
    }

    #[test]
    fn server_opt_in_and_out_win() {
        let nova = FakeNova::new();
        nova.add_flavor("ha", &[("evacuable", "true")]);
        nova.add_flavor("plain", &[]);
        let cfg = PolicyConfig::default();
        let sel = Selector::prepare(&nova, &cfg, "dead").unwrap();
        let mut out = server("1", "ha", None);
        out.metadata.insert("instance-ha:evacuate".into(), "False".into());
        assert!(!sel.decide(&out).evacuate);
        let mut tagged_out = server("2", "ha", None);
        tagged_out.tags = Some(vec!["instance-ha:no-evacuate".into()]);
        assert!(!sel.decide(&tagged_out).evacuate);
        let mut opt_in = server("3", "plain", None);
        opt_in.metadata.insert("instance-ha:evacuate".into(), "true".into());
        assert!(sel.decide(&opt_in).evacuate);
        let mut tag_in = server("4", "plain", None);
        tag_in.tags = Some(vec!["evacuable".into()]);
        assert!(sel.decide(&tag_in).evacuate);
        // instance_filtering=false: everything but the explicit opt-out.
        let all = Selector::prepare(&nova, &PolicyConfig { filtering: false, ..cfg }, "dead").unwrap();
        assert!(all.decide(&server("5", "plain", None)).evacuate);
        assert!(!all.decide(&out).evacuate);
    }

    #[test]
    fn aggregates_are_fail_closed_once_used() {
        let nova = FakeNova::new();
        nova.add_flavor("plain", &[]);
        nova.add_aggregate("ha-hosts", &["good"], &[("evacuable", "true")]);
        nova.add_aggregate("no-ha", &["excluded"], &[("evacuable", "false")]);
        let cfg = PolicyConfig::default();
        let good = Selector::prepare(&nova, &cfg, "good").unwrap();
        let d = good.decide(&server("1", "plain", None));
        assert!(d.evacuate && d.why.contains("evacuable aggregate ha-hosts"), "{}", d.why);
        let other = Selector::prepare(&nova, &cfg, "elsewhere").unwrap();
        let d = other.decide(&server("1", "plain", None));
        assert!(!d.evacuate && d.why.contains("in no aggregate"), "{}", d.why);
        let ex = Selector::prepare(&nova, &cfg, "excluded").unwrap();
        assert!(!ex.decide(&server("1", "plain", None)).evacuate);
        let noagg = Selector::prepare(&nova, &PolicyConfig { aggregates: false, ..cfg }, "elsewhere").unwrap();
        assert!(noagg.decide(&server("1", "plain", None)).evacuate);
    }

    #[test]
    fn priority_then_stable_order() {
        let nova = FakeNova::new();
        nova.add_flavor("gold", &[("instance-ha:priority", "100")]);
        nova.add_flavor("plain", &[]);
        let sel = Selector::prepare(&nova, &PolicyConfig::default(), "dead").unwrap();
        let mut a = server("a", "plain", None);
        a.name = "b-vm".into();
        let mut b = server("b", "plain", None);
        b.name = "a-vm".into();
        let c = server("c", "gold", None);
        let mut d = server("d", "gold", None);
        d.metadata.insert("instance-ha:priority".into(), "500".into());
        let mut v = vec![a, b, c, d];
        sel.order(&mut v);
        let ids: Vec<_> = v.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["d", "c", "b", "a"]);
    }
}
