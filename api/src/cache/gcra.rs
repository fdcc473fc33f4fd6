//! GCRA, the generic cell rate algorithm, over several buckets at once: the
//! arithmetic both backends share (Redis runs it as [`SCRIPT`], the
//! in-process cache as [`take`]), so a budget means the same on either.
//!
//! A bucket keeps one number, its theoretical arrival time (TAT): when it
//! would be full again. A quota `q` per window `w` gives each unit an
//! interval `w / q`; a request of cost `n` fits when the TAT, moved `n`
//! intervals on, is at most a whole window ahead of now. So a bucket allows
//! a burst of its whole quota and then one unit per interval, with no
//! window edge at which two quotas pass back to back. A bucket full again
//! is no different from one never used, so its key expires then.
//!
//! All or nothing: a request is charged on every bucket or on none, so a
//! refusal by one budget never spends another's.

use std::time::Duration;

/// One budget's bucket, and what a request takes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    /// Microseconds for one unit to come back: the window over the quota.
    pub interval_us: u64,
    /// How far ahead of now the TAT may be: the whole quota's worth.
    pub capacity_us: u64,
    /// Units the request takes, from 1 to the quota: a request costing more
    /// than a whole budget takes the whole budget, so it still fits a full
    /// bucket rather than never.
    pub cost: u64,
}

impl Bucket {
    /// `quota` (at least 1) units per `window`.
    pub fn new(key: String, quota: u64, window: Duration, cost: u64) -> Self {
        let quota = quota.max(1);
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
        // Rounded up, and the capacity made a whole number of intervals,
        // so exactly `quota` units fit an empty bucket.
        let interval_us = window_us.div_ceil(quota);
        Self { key, interval_us, capacity_us: interval_us.saturating_mul(quota), cost: cost.clamp(1, quota) }
    }

    pub fn quota(&self) -> u64 {
        self.capacity_us / self.interval_us
    }

    /// Units left once the TAT is `ahead_us` ahead of now.
    pub fn remaining(&self, ahead_us: u64) -> u64 {
        self.capacity_us.saturating_sub(ahead_us) / self.interval_us
    }

    /// How long until this request's cost fits, with the TAT `ahead_us`
    /// ahead of now (zero when it fits now).
    pub fn wait_us(&self, ahead_us: u64) -> u64 {
        (ahead_us + self.cost.saturating_mul(self.interval_us)).saturating_sub(self.capacity_us)
    }
}

/// What a request got from its buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Every bucket had room, and each was charged; otherwise none was.
    pub allowed: bool,
    /// Per bucket, how far its TAT is ahead of now: after the charge when
    /// allowed, as it stands when not.
    pub ahead_us: Vec<u64>,
}

impl Taken {
    /// From [`SCRIPT`]'s reply: `{allowed, ahead_1, ..., ahead_n}`.
    pub fn from_reply(reply: &[i64], buckets: usize) -> Option<Self> {
        let (allowed, ahead) = reply.split_first()?;
        if ahead.len() != buckets {
            return None;
        }
        Some(Self { allowed: *allowed == 1, ahead_us: ahead.iter().map(|a| u64::try_from(*a).unwrap_or(0)).collect() })
    }
}

/// The decision at `now` (µs on the store's clock) for the buckets' stored
/// TATs (`None`: absent or expired), and the TATs to store when allowed.
pub fn take(buckets: &[Bucket], stored: &[Option<u64>], now: u64) -> (Taken, Vec<u64>) {
    let mut tats: Vec<u64> = stored.iter().map(|t| t.unwrap_or(now).max(now)).collect();
    let allowed = buckets.iter().zip(&tats).all(|(b, tat)| b.wait_us(tat - now) == 0);
    if allowed {
        for (tat, b) in tats.iter_mut().zip(buckets) {
            *tat += b.cost * b.interval_us;
        }
    }
    let ahead_us = tats.iter().map(|t| t - now).collect();
    (Taken { allowed, ahead_us }, tats)
}

/// [`take`] as one Redis script, on Redis's own clock (`TIME`), so replicas
/// whose clocks disagree still share one budget. KEYS: the buckets;
/// ARGV[3i-2], ARGV[3i-1], ARGV[3i]: bucket i's interval, capacity (µs) and
/// cost. Replies `{allowed, ahead_1, ..., ahead_n}`. TATs are written with
/// `%.0f`: Lua's `tostring` would round 16-digit microseconds.
pub const SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tats, allowed = {}, 1
for i, key in ipairs(KEYS) do
  local tat = math.max(tonumber(redis.call('GET', key) or 0) or 0, now)
  tats[i] = tat
  if tat - now + tonumber(ARGV[3 * i]) * tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then allowed = 0 end
end
local reply = {allowed}
for i, key in ipairs(KEYS) do
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + tonumber(ARGV[3 * i]) * tonumber(ARGV[3 * i - 2])
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
  reply[i + 1] = tat - now
end
return reply
";

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(quota: u64, cost: u64) -> Bucket {
        Bucket::new("k".into(), quota, Duration::from_secs(60), cost)
    }

    #[test]
    fn an_empty_bucket_takes_its_whole_quota_at_once_and_no_more() {
        let b = [bucket(10, 1)];
        let (mut stored, now) = (None, 1_000_000_000);
        for i in 0..10 {
            let (taken, tats) = take(&b, &[stored], now);
            assert!(taken.allowed, "unit {i}");
            assert_eq!(b[0].remaining(taken.ahead_us[0]), 9 - i);
            stored = Some(tats[0]);
        }
        let (taken, tats) = take(&b, &[stored], now);
        assert!(!taken.allowed);
        assert_eq!(tats[0], stored.unwrap(), "a refusal charges nothing");
        assert_eq!(b[0].wait_us(taken.ahead_us[0]), 6_000_000, "one unit comes back every 6 s");
        let (later, _) = take(&b, &[stored], now + 6_000_000);
        assert!(later.allowed);
    }

    #[test]
    fn one_full_bucket_refuses_the_request_on_every_bucket() {
        let b = [bucket(10, 1), bucket(2, 1)];
        let (first, tats) = take(&b, &[None, None], 0);
        let (second, tats) = take(&b, &[Some(tats[0]), Some(tats[1])], 0);
        assert!(first.allowed && second.allowed);
        let (third, kept) = take(&b, &[Some(tats[0]), Some(tats[1])], 0);
        assert!(!third.allowed);
        assert_eq!(kept, tats, "the roomy bucket is not charged either");
        assert_eq!(b[0].remaining(third.ahead_us[0]), 8);
    }

    #[test]
    fn a_cost_is_clamped_to_the_quota_and_weighs_that_many_units() {
        assert_eq!(bucket(100, 0).cost, 1);
        assert_eq!(bucket(100, 5_000).cost, 100);
        let b = [bucket(100, 30)];
        let (taken, _) = take(&b, &[None], 0);
        assert_eq!(b[0].remaining(taken.ahead_us[0]), 70);
    }

    #[test]
    fn a_quota_that_does_not_divide_the_window_still_takes_exactly_the_quota() {
        let b = Bucket::new("k".into(), 7, Duration::from_secs(60), 1);
        assert_eq!(b.quota(), 7);
        assert!(b.capacity_us >= 60_000_000);
    }

    #[test]
    fn a_reply_of_the_wrong_length_is_refused() {
        assert_eq!(Taken::from_reply(&[1, 5, 6], 2), Some(Taken { allowed: true, ahead_us: vec![5, 6] }));
        assert_eq!(Taken::from_reply(&[1, 5], 2), None);
        assert_eq!(Taken::from_reply(&[], 0), None);
    }
}
