//! Seeded random logs (`PARLEY_TEST_SEED` repeats a run): redelivered records change nothing,
//! and a key's verdict follows from the log alone — valid exactly when it was created for a
//! created tenant and not revoked by that tenant since.

use super::*;
use events::tenancy::{ApiKeyRevoked, TenantCreated, TenantUpdated, UserTokensRevoked};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

fn seed() -> u64 {
    let seed = std::env::var("PARLEY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("seed {seed} (PARLEY_TEST_SEED={seed} repeats this run)");
    seed
}

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

fn random_log(rng: &mut StdRng, len: usize) -> (Vec<TenancyEnvelope>, Vec<crate::keys::Minted>) {
    let mut minted = Vec::new();
    let mut log = Vec::new();
    for at in 0..len as i64 {
        let tenant = TENANTS[rng.gen_range(0..TENANTS.len())];
        let event = match rng.gen_range(0..5) {
            0 => {
                let m = crate::keys::mint(None, None);
                let e = TenancyEvent::TenantCreated(TenantCreated {
                    name: None,
                    settings: TenantSettings::default(),
                    key: m.record.clone(),
                });
                minted.push(m);
                e
            }
            1 => TenancyEvent::TenantUpdated(TenantUpdated {
                name: None,
                settings: TenantSettings::default(),
                suspended: rng.gen(),
            }),
            2 => {
                let m = crate::keys::mint(None, None);
                let e = TenancyEvent::ApiKeyCreated(m.record.clone());
                minted.push(m);
                e
            }
            3 if !minted.is_empty() => TenancyEvent::ApiKeyRevoked(ApiKeyRevoked {
                key_id: minted[rng.gen_range(0..minted.len())].record.key_id.clone(),
            }),
            _ => TenancyEvent::UserTokensRevoked(UserTokensRevoked {
                uid: Uid::parse(format!("u{}", rng.gen_range(0..3))).expect("uid"),
                before_s: rng.gen_range(0..100),
            }),
        };
        log.push(TenancyEnvelope {
            tenant: TenantId::parse(tenant).expect("tenant"),
            occurred_at: at,
            event,
        });
    }
    (log, minted)
}

#[test]
fn redeliveries_change_nothing_and_verdicts_follow_the_log() {
    let mut rng = StdRng::seed_from_u64(seed());
    for _ in 0..200 {
        let len = rng.gen_range(1..40);
        let (log, minted) = random_log(&mut rng, len);
        let mut once = Registry::default();
        let mut redelivered = Registry::default();
        for (i, env) in log.iter().enumerate() {
            let seq = i as u64 + 1;
            once.apply(seq, env);
            redelivered.apply(seq, env);
            // An ordered consumer recreated after a failure may hand out earlier records.
            for _ in 0..rng.gen_range(0..3) {
                let back = rng.gen_range(0..=i);
                redelivered.apply(back as u64 + 1, &log[back]);
            }
        }
        assert_eq!(once, redelivered);

        // The model: which tenants exist, which keys belong to whom, which are revoked.
        let mut created = HashSet::new();
        let mut owner = std::collections::HashMap::new();
        let mut revoked = HashSet::new();
        for env in &log {
            match &env.event {
                TenancyEvent::TenantCreated(e) if created.insert(env.tenant.clone()) => {
                    owner
                        .entry(e.key.key_id.clone())
                        .or_insert(env.tenant.clone());
                }
                TenancyEvent::ApiKeyCreated(k) if created.contains(&env.tenant) => {
                    owner.entry(k.key_id.clone()).or_insert(env.tenant.clone());
                }
                TenancyEvent::ApiKeyRevoked(r) if owner.get(&r.key_id) == Some(&env.tenant) => {
                    revoked.insert(r.key_id.clone());
                }
                _ => {}
            }
        }
        for m in &minted {
            let want = match owner.get(&m.record.key_id) {
                None => KeyVerdict::Unknown,
                Some(_) if revoked.contains(&m.record.key_id) => KeyVerdict::Revoked,
                Some(t) => KeyVerdict::Valid(t.clone()),
            };
            assert_eq!(once.verify_key(&m.key, 0), want, "{:?}", m.record);
        }
    }
}
