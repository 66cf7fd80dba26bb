//! Bad input is answered short and names a field of the request's own message.
//!
//! The walk takes every RPC from the descriptors (so a new RPC is walked with no change here)
//! and, with tokens that hold every role, first brings a request as far through the checks as
//! it gets: it fills every field with a plausible value; while the answer is
//! `INVALID_ARGUMENT` it tries other values for the field named, from a palette per type and
//! from the ids earlier answers gave; an unknown id it replaces with known ones, with each
//! token in turn. From there it sets each field in turn to a bad value (a 5,000-character
//! string, out-of-range numbers and timestamps, unknown enum values, a missing message, an
//! empty list). Every `INVALID_ARGUMENT` on the way must name, in its `google.rpc.BadRequest`,
//! a path that exists in the request sent (dots into messages, `[i]` into a list the request
//! holds), and no answer may quote more than a short prefix of what was sent. How far a
//! request gets depends on the palettes: the walk finds wrong paths, it cannot prove there are
//! none.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value};
use symbiose_domain::Role;
use symbiose_domain::input::INPUT_ECHO_CHARS_MAX;
use symbiose_kit::auth::{Claims, KEYS_DIR, TokenAuthority};
use symbiose_kit::error::STATUS_MESSAGE_BYTES_MAX;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{self, now_s};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::wire::{self, Rpc, frame};

/// Length of the junk put in string fields, in characters.
const JUNK_CHARS: usize = 5_000;
/// Most repairs of one request (a field refused, an id unknown) before it is walked as it is.
const REPAIR_STEPS_MAX: usize = 48;
/// How deep requests are filled and their fields set to bad values.
const FILL_DEPTH_MAX: usize = 6;
/// Most ids kept from earlier answers to try in string fields.
const IDS_MAX: usize = 256;
/// Validity of the walker's token, in seconds.
const TOKEN_TTL_S: u64 = 3_600;
/// What every rate limit is raised to: the walk makes thousands of calls with one token.
const RATE_LIMIT_PER_SECOND: u32 = 100_000;

/// What the buyer of the deal has on its account, in euro cents: more than the deal costs.
const BUYER_DEPOSIT_MINOR: i64 = 10_000_000;

/// The roles of the walker's organization: every role an organization may hold.
const MEMBER_ROLES: [common::Role; 4] =
    [common::Role::Producer, common::Role::Buyer, common::Role::Recycler, common::Role::Carrier];

const TIMESTAMP: &str = "google.protobuf.Timestamp";
const SECONDS_PER_DAY: i64 = 86_400;

#[tokio::test]
async fn every_invalid_argument_names_a_field_of_its_request() {
    let mut walk = Walk::start().await;
    let mut based = Vec::new();
    for rpc in wire::rpcs(&wire::pool()) {
        let base = walk.repair(&rpc).await;
        based.push((rpc, base, walk.probe.token.clone()));
    }
    assert!(!based.is_empty(), "no RPC in the descriptors");
    walk.restore().await;
    // Some bad values make a call wait for its bound (a position far ahead): the RPCs are
    // mutated at the same time, each on its own connection.
    let mut tasks = Vec::new();
    for (rpc, base, token) in based {
        let probe = walk.probe(token).await;
        tasks.push(tokio::spawn(async move {
            let mut problems = BTreeSet::new();
            let mut refused = 0;
            for (location, bad) in mutations(&base) {
                let mut request = base.clone();
                set(&mut request, &location, bad);
                let answer = probe.call(&rpc, &request).await;
                refused += usize::from(answer.status.code() == Code::InvalidArgument);
                problems.extend(check(&rpc, &request, &answer.status));
            }
            (rpc, refused, problems)
        }));
    }
    // The walk checks the fields INVALID_ARGUMENT answers name: every RPC whose request has a
    // field that can hold a bad value (a log position to wait for takes any number) must have
    // answered some, or it was not walked.
    let mut never_refused = Vec::new();
    for task in tasks {
        let (rpc, refused, problems) = task.await.expect("a walk task");
        if refused == 0 && rpc.input.fields().any(|field| field.name() != "min_position") {
            never_refused.push(rpc.path);
        }
        walk.problems.extend(problems);
    }
    assert!(walk.problems.is_empty(), "{} problems:\n{}", walk.problems.len(), report(&walk.problems));
    assert!(never_refused.is_empty(), "no bad value refused on {never_refused:?}");
}

#[tokio::test]
async fn a_long_id_is_answered_with_a_short_message_on_every_rpc() {
    let mut walk = Walk::start().await;
    let junk = junk();
    let mut ids_walked = 0;
    // Wrong paths met on the way are the other test's: only the quotes count here.
    let mut quoting = BTreeSet::new();
    for rpc in wire::rpcs(&wire::pool()) {
        let base = walk.repair(&rpc).await;
        for location in locations(&base, &[], 0) {
            let last = location.last().expect("a location has a field");
            if last.field.kind() != Kind::String
                || !last.field.name().ends_with("_id")
                || last.field.is_list()
            {
                continue;
            }
            ids_walked += 1;
            let mut request = base.clone();
            set(&mut request, &location, Some(Value::String(junk.clone())));
            let answer = walk.probe.call(&rpc, &request).await;
            if answer.status.code() == Code::Ok {
                continue;
            }
            if let Some(problem) = too_long(&rpc, &answer.status) {
                quoting.insert(problem);
            }
        }
    }
    assert!(ids_walked > 50, "only {ids_walked} ids walked");
    assert!(quoting.is_empty(), "{} problems:\n{}", quoting.len(), report(&quoting));
}

/// One field on the way to a value: the field, and the element of a list.
#[derive(Debug, Clone)]
struct Step {
    field: FieldDescriptor,
    index: Option<usize>,
}

/// A place in a request: the fields from the top.
type Location = Vec<Step>;

/// A server, tokens that hold every role, and what the walk learnt on the way.
struct Walk {
    server: TestServer,
    /// The organization of the walker's token.
    walker: String,
    /// Tokens with every role: the walker's first, then those of the parties of the deal.
    tokens: Vec<String>,
    /// What sends requests, with the token of the RPC being walked.
    probe: Probe,
    /// Ids from the fixtures and from earlier answers, to try in string fields.
    ids: Vec<String>,
    problems: BTreeSet<String>,
}

/// What sends a request and reads its answer.
#[derive(Clone)]
struct Probe {
    channel: Channel,
    token: String,
}

impl Probe {
    async fn call(&self, rpc: &Rpc, request: &DynamicMessage) -> wire::Answer {
        wire::call(&self.channel, &rpc.path, Some(&self.token), frame(&request.encode_to_vec())).await
    }
}

impl Walk {
    /// A server holding an organization of every role with a site (the walker), a deal agreed
    /// between two others, the buyer funded, and for each of the three a token with every
    /// role, the platform's included.
    async fn start() -> Walk {
        let server = TestServer::start_with(|config| {
            config.rate_limit_per_second = RATE_LIMIT_PER_SECOND.try_into().expect("not zero");
            config.rate_limit_burst = RATE_LIMIT_PER_SECOND.try_into().expect("not zero");
        })
        .await
        .expect("server");
        let walker = fixtures::member(
            &server,
            "Walker SAS",
            common::Country::France,
            &fixtures::siren(55_555_555),
            &MEMBER_ROLES,
            "Strasbourg",
        )
        .await
        .expect("the walker");
        let seller = fixtures::strasbourg_producer(&server).await.expect("a seller");
        let buyer = fixtures::kehl_buyer(&server).await.expect("a buyer");
        // Funded, so that the deal's payment is held and its shipment can go all the way.
        SettlementServiceClient::new(server.operator().await.expect("a channel"))
            .record_deposit(settlement::RecordDepositRequest {
                request_id: String::new(),
                organization_id: buyer.organization_id.clone(),
                amount: Some(common::Money {
                    amount_minor: BUYER_DEPOSIT_MINOR,
                    currency_code: "EUR".to_owned(),
                }),
            })
            .await
            .expect("a deposit");
        let offer = fixtures::pallet_terms(listings::ListingSide::Offer, &seller.site_id, 40, 350);
        let request = fixtures::pallet_terms(listings::ListingSide::Request, &buyer.site_id, 40, 400);
        let deal = fixtures::agree(&server, &seller, offer, &buyer, request).await.expect("a deal");

        let (authority, _) =
            TokenAuthority::load_or_create(&server.config.data_dir.join(KEYS_DIR)).expect("the signing key");
        let issued_at_s = now_s() as u64;
        let tokens: Vec<String> = [&walker, &seller, &buyer]
            .into_iter()
            .map(|member| {
                authority.issue(&Claims {
                    organization_id: member.organization_id.parse().expect("an id"),
                    roles: Role::ALL.to_vec(),
                    issued_at_s,
                    expires_at_s: issued_at_s + TOKEN_TTL_S,
                    token_id: Uuid::now_v7(),
                })
            })
            .collect();
        let channel = server.channel().await.expect("channel");
        let mut walk = Walk {
            server,
            walker: walker.organization_id.clone(),
            probe: Probe { channel, token: tokens[0].clone() },
            tokens,
            ids: Vec::new(),
            problems: BTreeSet::new(),
        };
        for member in [&walker, &seller, &buyer] {
            walk.keep_id(&member.organization_id);
            walk.keep_id(&member.site_id);
        }
        let pool = wire::pool();
        let deal_descriptor =
            pool.get_message_by_name("symbiose.matching.v1.Deal").expect("the Deal message");
        let deal = DynamicMessage::decode(deal_descriptor, deal.encode_to_vec().as_slice()).expect("a deal");
        walk.keep_ids_of(&deal);
        walk
    }

    /// Gives the walker's organization every role again: an RPC walked before (setting roles)
    /// may have taken some, and the calls after need them to get as far.
    async fn restore(&self) {
        let mut operator = OrganizationServiceClient::new(self.server.operator().await.expect("a channel"));
        operator
            .set_roles(listings::SetRolesRequest {
                request_id: String::new(),
                organization_id: self.walker.clone(),
                roles: MEMBER_ROLES.iter().map(|role| (*role).into()).collect(),
            })
            .await
            .expect("the walker's roles");
    }

    /// A probe with `token` on a connection of its own.
    async fn probe(&self, token: String) -> Probe {
        Probe { channel: self.server.channel().await.expect("channel"), token }
    }

    fn keep_id(&mut self, id: &str) {
        if self.ids.len() < IDS_MAX && Uuid::parse_str(id).is_ok() && !self.ids.iter().any(|kept| kept == id)
        {
            self.ids.push(id.to_owned());
        }
    }

    fn keep_ids_of(&mut self, message: &DynamicMessage) {
        for (_, value) in message.fields() {
            self.keep_ids_in(value);
        }
    }

    fn keep_ids_in(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.keep_id(text),
            Value::Message(message) => self.keep_ids_of(message),
            Value::List(values) => values.iter().for_each(|value| self.keep_ids_in(value)),
            _ => {}
        }
    }

    /// Sends `request`, records what is wrong with the answer and keeps the ids of a success.
    async fn send(&mut self, rpc: &Rpc, request: &DynamicMessage) -> Status {
        let answer = self.probe.call(rpc, request).await;
        self.problems.extend(check(rpc, request, &answer.status));
        if answer.status.code() == Code::Ok
            && let Some(bytes) = answer.message
            && let Ok(response) = DynamicMessage::decode(rpc.output.clone(), bytes)
        {
            self.keep_ids_of(&response);
        }
        answer.status
    }

    /// A request of `rpc` brought as far through the checks as the palettes allow.
    /// The token it is sent with is left in the probe.
    async fn repair(&mut self, rpc: &Rpc) -> DynamicMessage {
        self.restore().await;
        self.probe.token = self.tokens[0].clone();
        let mut request = fill(&rpc.input, 0);
        for _ in 0..REPAIR_STEPS_MAX {
            let status = self.send(rpc, &request).await;
            let repaired = match named_field(&status) {
                Some(field) => self.repair_field(rpc, &request, &field).await,
                None if status.code() == Code::NotFound => self.repair_id(rpc, &request, &status).await,
                None if status.code() == Code::FailedPrecondition => {
                    match self.repair_id(rpc, &request, &status).await {
                        Some(repaired) => Some(repaired),
                        None => self.drop_message(rpc, &request).await,
                    }
                }
                None if status.code() == Code::PermissionDenied => {
                    self.switch_token(rpc, &request, &status).await
                }
                None => None,
            };
            match repaired {
                Some(repaired) => request = repaired,
                None => return request,
            }
        }
        request
    }

    /// `request` with another value for `field`, which the server then takes.
    async fn repair_field(
        &mut self,
        rpc: &Rpc,
        request: &DynamicMessage,
        field: &str,
    ) -> Option<DynamicMessage> {
        let location = resolve(request, field).ok()?;
        // The values of an enum often go together (the units of a delivery's quantities): each
        // value everywhere the request holds that enum first.
        if let Kind::Enum(kind) = location.last().expect("a location has a field").field.kind() {
            for value in kind.values().filter(|value| value.number() != 0) {
                let mut attempt = request.clone();
                set_enum_everywhere(&mut attempt, kind.full_name(), value.number());
                set(&mut attempt, &location, Some(Value::EnumNumber(value.number())));
                let status = self.send(rpc, &attempt).await;
                if named_field(&status).is_none_or(|named| named != field) {
                    return Some(attempt);
                }
            }
        }
        for candidate in self.candidates(&location) {
            let mut attempt = request.clone();
            set(&mut attempt, &location, candidate);
            let status = self.send(rpc, &attempt).await;
            if named_field(&status).is_none_or(|named| named != field) {
                return Some(attempt);
            }
        }
        None
    }

    /// `request` with a known id where `status` says an id is unknown or unfit: in the field
    /// holding the id the message quotes, else (unknown only) in each field named as an id.
    async fn repair_id(
        &mut self,
        rpc: &Rpc,
        request: &DynamicMessage,
        status: &Status,
    ) -> Option<DynamicMessage> {
        let strings: Vec<Location> = locations(request, &[], 0)
            .into_iter()
            .filter(|location| {
                let last = location.last().expect("a location has a field");
                last.field.kind() == Kind::String && !(last.field.is_list() && last.index.is_none())
            })
            .collect();
        let quoted: Vec<Location> = strings
            .iter()
            .filter(|location| {
                value_at(request, location)
                    .is_some_and(|value| !value.is_empty() && status.message().contains(&value))
            })
            .cloned()
            .collect();
        if quoted.is_empty() && status.code() != Code::NotFound {
            return None;
        }
        let suspects = if quoted.is_empty() {
            strings
                .into_iter()
                .filter(|location| location.last().expect("a field").field.name().ends_with("_id"))
                .collect()
        } else {
            quoted
        };
        let unknown = without_ids(status.message());
        // Some ids are known only to the parties: each token in turn, the current one first.
        let current = self.probe.token.clone();
        let mut tokens = self.tokens.clone();
        tokens.retain(|token| *token != current);
        tokens.insert(0, current.clone());
        for token in tokens {
            self.probe.token = token;
            for location in &suspects {
                for id in self.ids.clone() {
                    let mut attempt = request.clone();
                    set(&mut attempt, location, Some(Value::String(id)));
                    let answer = self.send(rpc, &attempt).await;
                    let further = match progress(answer.code()).cmp(&progress(status.code())) {
                        std::cmp::Ordering::Greater => true,
                        // Another id unknown: the one quoted is known now.
                        std::cmp::Ordering::Equal => {
                            answer.code() == Code::NotFound && without_ids(answer.message()) != unknown
                        }
                        std::cmp::Ordering::Less => false,
                    };
                    if further {
                        return Some(attempt);
                    }
                }
            }
        }
        self.probe.token = current;
        None
    }

    /// `request` without one of the messages it holds, if that gets it past a rule of the
    /// state (a pallet exchange reported where none was agreed).
    async fn drop_message(&mut self, rpc: &Rpc, request: &DynamicMessage) -> Option<DynamicMessage> {
        for location in locations(request, &[], 0) {
            let last = location.last().expect("a location has a field");
            if !matches!(last.field.kind(), Kind::Message(_)) || last.field.is_list() {
                continue;
            }
            let mut attempt = request.clone();
            set(&mut attempt, &location, None);
            let answer = self.send(rpc, &attempt).await;
            // A message the call needs is refused as bad input: not further.
            if answer.code() != Code::InvalidArgument
                && progress(answer.code()) > progress(Code::FailedPrecondition)
            {
                return Some(attempt);
            }
        }
        None
    }

    /// `request` again if another token gets it further than `status`, which becomes the
    /// probe's token: some calls are only the parties'.
    async fn switch_token(
        &mut self,
        rpc: &Rpc,
        request: &DynamicMessage,
        status: &Status,
    ) -> Option<DynamicMessage> {
        let current = self.probe.token.clone();
        for token in self.tokens.clone() {
            if token == current {
                continue;
            }
            self.probe.token = token;
            let answer = self.send(rpc, request).await;
            if answer.code() != status.code()
                || without_ids(answer.message()) != without_ids(status.message())
            {
                return Some(request.clone());
            }
        }
        self.probe.token = current;
        None
    }

    /// Values to try at `location`: `None` clears it.
    fn candidates(&self, location: &[Step]) -> Vec<Option<Value>> {
        let last = location.last().expect("a location has a field");
        let singles = || {
            let mut values = palette(&last.field.kind());
            if last.field.kind() == Kind::String {
                values.extend(self.ids.iter().map(|id| Value::String(id.clone())));
            }
            values
        };
        if last.field.is_list() && last.index.is_none() {
            let mut lists = vec![Some(Value::List(Vec::new()))];
            lists.extend(singles().into_iter().map(|value| Some(Value::List(vec![value]))));
            lists.push(Some(Value::List(vec![plausible(&last.field.kind(), 0); 2])));
            return lists;
        }
        let mut values: Vec<Option<Value>> = singles().into_iter().map(Some).collect();
        if matches!(last.field.kind(), Kind::Message(_)) {
            values.insert(0, None);
        }
        values
    }
}

/// `message` with every field set to a plausible value (one member of each oneof).
fn fill(message: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut filled = DynamicMessage::new(message.clone());
    if depth > FILL_DEPTH_MAX {
        return filled;
    }
    let mut oneofs_set = BTreeSet::new();
    for field in message.fields() {
        if field.is_map() {
            continue;
        }
        if let Some(oneof) = field.containing_oneof()
            && !oneofs_set.insert(oneof.full_name().to_owned())
        {
            continue;
        }
        let value = plausible(&field.kind(), depth);
        filled.set_field(&field, if field.is_list() { Value::List(vec![value]) } else { value });
    }
    filled
}

/// A value of `kind` that most checks accept.
fn plausible(kind: &Kind, depth: usize) -> Value {
    match kind {
        Kind::Message(message) if message.full_name() == TIMESTAMP => timestamp(SECONDS_PER_DAY),
        Kind::Message(message) => Value::Message(fill(message, depth + 1)),
        Kind::Enum(values) => Value::EnumNumber(
            values.values().map(|value| value.number()).find(|number| *number != 0).unwrap_or(0),
        ),
        Kind::String => Value::String(Uuid::now_v7().to_string()),
        Kind::Bool => Value::Bool(false),
        Kind::Bytes => Value::Bytes(Vec::new().into()),
        other => number(other, 1),
    }
}

/// Values of `kind` to try where the plausible one was refused.
fn palette(kind: &Kind) -> Vec<Value> {
    match kind {
        Kind::Message(message) if message.full_name() == TIMESTAMP => [
            3_600,
            SECONDS_PER_DAY,
            2 * SECONDS_PER_DAY,
            30 * SECONDS_PER_DAY,
            60 * SECONDS_PER_DAY,
            0,
            -3_600,
        ]
        .into_iter()
        .map(timestamp)
        .collect(),
        Kind::Message(message) => vec![Value::Message(fill(message, 1))],
        Kind::Enum(values) => values.values().map(|value| Value::EnumNumber(value.number())).collect(),
        Kind::String => [
            "",
            "Strasbourg",
            "150103",
            "15",
            "1501",
            "EUR",
            "en",
            "FR",
            "R3",
            "a@example.com",
            "+33 3 88 00 00 00",
            "https://example.com/a.jpg",
            "73282932000074",
            "732829320",
        ]
        .into_iter()
        .map(|text| Value::String(text.to_owned()))
        .chain([Value::String("ab".repeat(32)), Value::String(Uuid::now_v7().to_string())])
        .collect(),
        Kind::Bool => vec![Value::Bool(false), Value::Bool(true)],
        Kind::Bytes => vec![Value::Bytes(Vec::new().into())],
        Kind::Double | Kind::Float => {
            [0.0, 1.0, 48.5734, 7.7521, 45.0].into_iter().map(|value| float(kind, value)).collect()
        }
        other => [0, 1, 2, 5, 10, 24, 48, 100, 1_000, 10_000, 100_000, 1_000_000, -1]
            .into_iter()
            .filter(|value| *value >= 0 || signed(other))
            .map(|value| number(other, value))
            .collect(),
    }
}

/// Each field of `base`, as far as it goes, with the bad values to put there.
fn mutations(base: &DynamicMessage) -> Vec<(Location, Option<Value>)> {
    let junk = junk();
    let mut mutations = Vec::new();
    for location in locations(base, &[], 0) {
        let last = location.last().expect("a location has a field");
        let kind = last.field.kind();
        let bad: Vec<Option<Value>> = if last.field.is_list() && last.index.is_none() {
            vec![Some(Value::List(Vec::new()))]
        } else {
            match &kind {
                Kind::Message(message) if message.full_name() == TIMESTAMP => vec![
                    None,
                    Some(timestamp(-SECONDS_PER_DAY)),
                    Some(timestamp_of(i64::MAX, 0)),
                    Some(timestamp_of(now_s(), -1)),
                ],
                Kind::Message(_) => vec![None],
                Kind::String => vec![Some(Value::String(junk.clone())), Some(Value::String(String::new()))],
                Kind::Bool => vec![Some(Value::Bool(true)), Some(Value::Bool(false))],
                Kind::Enum(_) => vec![Some(Value::EnumNumber(0)), Some(Value::EnumNumber(9_999))],
                Kind::Double | Kind::Float => [f64::NAN, f64::INFINITY, -1e300, 0.0]
                    .into_iter()
                    .map(|value| Some(float(&kind, value)))
                    .collect(),
                Kind::Bytes => vec![Some(Value::Bytes(junk.clone().into_bytes().into()))],
                other => extremes(other).into_iter().map(Some).collect(),
            }
        };
        mutations.extend(bad.into_iter().map(|value| (location.clone(), value)));
    }
    mutations
}

/// Every field of `message` (and of the messages it holds, the first element of a list).
fn locations(message: &DynamicMessage, prefix: &[Step], depth: usize) -> Vec<Location> {
    let mut found = Vec::new();
    if depth > FILL_DEPTH_MAX {
        return found;
    }
    for field in message.descriptor().fields() {
        if field.is_map() {
            continue;
        }
        let mut location = prefix.to_vec();
        location.push(Step { field: field.clone(), index: None });
        found.push(location.clone());
        let value = message.get_field(&field);
        let (inner, location) = match (value.as_ref(), field.is_list()) {
            (Value::List(values), true) => {
                let Some(first) = values.first() else { continue };
                location.last_mut().expect("just pushed").index = Some(0);
                found.push(location.clone());
                (first.as_message().cloned(), location)
            }
            (Value::Message(inner), false) if message.has_field(&field) => (Some(inner.clone()), location),
            _ => (None, location),
        };
        if let Some(inner) = inner
            && inner.descriptor().full_name() != TIMESTAMP
        {
            found.extend(locations(&inner, &location, depth + 1));
        }
    }
    found
}

/// `request` with the value at `location` set, or cleared for `None`; the messages and list
/// elements on the way are made as needed.
fn set(request: &mut DynamicMessage, location: &[Step], value: Option<Value>) {
    let (step, rest) = location.split_first().expect("a location has a field");
    let field = &step.field;
    if rest.is_empty() {
        match (step.index, value) {
            (None, None) => request.clear_field(field),
            (None, Some(value)) => request.set_field(field, value),
            (Some(index), value) => {
                let list = element_list(request, field, index);
                match value {
                    Some(value) => list[index] = value,
                    None => {
                        list.remove(index);
                    }
                }
            }
        }
        return;
    }
    let inner = match step.index {
        None => {
            if !request.has_field(field) {
                let Kind::Message(message) = field.kind() else {
                    panic!("{} is not a message", field.name())
                };
                request.set_field(field, Value::Message(fill(&message, 1)));
            }
            request.get_field_mut(field)
        }
        Some(index) => &mut element_list(request, field, index)[index],
    };
    set(inner.as_message_mut().expect("a message on the way"), rest, value);
}

/// The list of `field`, with at least `index + 1` elements.
fn element_list<'a>(
    request: &'a mut DynamicMessage,
    field: &FieldDescriptor,
    index: usize,
) -> &'a mut Vec<Value> {
    let list = request.get_field_mut(field).as_list_mut().expect("a list");
    while list.len() <= index {
        list.push(plausible(&field.kind(), 1));
    }
    list
}

/// The field a `google.rpc.BadRequest` names, for an `INVALID_ARGUMENT`.
fn named_field(status: &Status) -> Option<String> {
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let bad_request = status.get_details_bad_request()?;
    bad_request.field_violations.first().map(|violation| violation.field.clone())
}

/// What is wrong with the answer `status` to `request`.
fn check(rpc: &Rpc, request: &DynamicMessage, status: &Status) -> Vec<String> {
    let mut problems = Vec::new();
    if status.code() == Code::Ok {
        return problems;
    }
    if status.code() == Code::Unknown && status.message().starts_with(wire::NO_ANSWER) {
        problems.push(format!("{}: {}", rpc.path, status.message()));
    }
    if let Some(problem) = too_long(rpc, status) {
        problems.push(problem);
    }
    if status.code() != Code::InvalidArgument {
        return problems;
    }
    let Some(bad_request) = status.get_details_bad_request() else {
        problems.push(format!("{}: INVALID_ARGUMENT without a field: {:?}", rpc.path, status.message()));
        return problems;
    };
    if bad_request.field_violations.is_empty() {
        problems.push(format!("{}: INVALID_ARGUMENT without a field: {:?}", rpc.path, status.message()));
    }
    for violation in &bad_request.field_violations {
        if let Err(why) = resolve(request, &violation.field) {
            problems.push(format!(
                "{}: `{}` {why} ({:?})",
                rpc.path,
                violation.field,
                short(&violation.description)
            ));
        }
    }
    problems
}

/// Whether `status` quotes more of the junk than a short prefix, or is over the bound.
fn too_long(rpc: &Rpc, status: &Status) -> Option<String> {
    let quoted = "z".repeat(INPUT_ECHO_CHARS_MAX + 1);
    let descriptions: Vec<String> = status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request.field_violations.into_iter().map(|violation| violation.description).collect()
        })
        .unwrap_or_default();
    let texts = std::iter::once(status.message().to_owned()).chain(descriptions);
    for text in texts {
        if text.len() > STATUS_MESSAGE_BYTES_MAX || text.contains(&quoted) {
            return Some(format!(
                "{}: {:?} answered with {} bytes quoting the input: {:?}",
                rpc.path,
                status.code(),
                text.len(),
                short(&text)
            ));
        }
    }
    None
}

/// The fields `path` names in `request`, or why it names none.
fn resolve(request: &DynamicMessage, path: &str) -> Result<Location, String> {
    if path.is_empty() {
        return Err("is empty".to_owned());
    }
    let mut location = Vec::new();
    let mut message = Some(request.clone());
    let mut descriptor = request.descriptor();
    let segments: Vec<&str> = path.split('.').collect();
    for (position, segment) in segments.iter().enumerate() {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => {
                let index = rest
                    .strip_suffix(']')
                    .and_then(|index| index.parse::<usize>().ok())
                    .ok_or_else(|| format!("has a bad index in `{segment}`"))?;
                (name, Some(index))
            }
            None => (*segment, None),
        };
        let field = descriptor
            .get_field_by_name(name)
            .ok_or_else(|| format!("is not a field: {} has no `{name}`", descriptor.full_name()))?;
        if index.is_some() && !field.is_list() {
            return Err(format!("indexes `{name}`, which is not a list"));
        }
        let last = position + 1 == segments.len();
        let value = message
            .as_ref()
            .filter(|message| message.has_field(&field))
            .map(|message| message.get_field(&field).into_owned());
        let element = match (index, value) {
            (Some(index), Some(Value::List(values))) => match values.get(index) {
                Some(element) => Some(element.clone()),
                None => {
                    return Err(format!(
                        "indexes `{name}` at {index}, and the request holds {}",
                        values.len()
                    ));
                }
            },
            (Some(index), _) => {
                return Err(format!("indexes `{name}` at {index}, and the request holds none"));
            }
            (None, value) => value,
        };
        location.push(Step { field: field.clone(), index });
        if last {
            break;
        }
        if field.is_list() && index.is_none() {
            return Err(format!("goes into the list `{name}` without an index"));
        }
        let Kind::Message(inner) = field.kind() else {
            return Err(format!("goes into `{name}`, which is not a message"));
        };
        message = element.and_then(|element| element.as_message().cloned());
        descriptor = inner;
    }
    Ok(location)
}

/// How far through a call an answer with `code` got: a call first finds what it acts on, then
/// checks who asks, then the rules of the state.
fn progress(code: Code) -> u8 {
    match code {
        Code::NotFound => 1,
        Code::PermissionDenied => 2,
        Code::FailedPrecondition => 3,
        _ => 4,
    }
}

/// `message` with every field of the enum `name`, at any depth, set to `number`.
fn set_enum_everywhere(message: &mut DynamicMessage, name: &str, number: i32) {
    for (field, value) in message.fields_mut() {
        let is_it = matches!(field.kind(), Kind::Enum(kind) if kind.full_name() == name);
        match value {
            Value::EnumNumber(value) if is_it => *value = number,
            Value::List(values) => {
                for value in values {
                    match value {
                        Value::EnumNumber(value) if is_it => *value = number,
                        Value::Message(inner) => set_enum_everywhere(inner, name, number),
                        _ => {}
                    }
                }
            }
            Value::Message(inner) => set_enum_everywhere(inner, name, number),
            _ => {}
        }
    }
}

/// The string at `location` in `request`, if set.
fn value_at(request: &DynamicMessage, location: &[Step]) -> Option<String> {
    let (step, rest) = location.split_first()?;
    if !request.has_field(&step.field) {
        return None;
    }
    let value = request.get_field(&step.field).into_owned();
    let value = match step.index {
        Some(index) => value.as_list()?.get(index)?.clone(),
        None => value,
    };
    match rest.is_empty() {
        true => value.as_str().map(str::to_owned),
        false => value_at(value.as_message()?, rest),
    }
}

/// `message` with each uuid in it replaced, so that two answers about different ids compare
/// equal.
fn without_ids(message: &str) -> String {
    message
        .split(' ')
        .map(|word| {
            if Uuid::parse_str(word.trim_matches(|c: char| !c.is_ascii_hexdigit())).is_ok() {
                "<id>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn junk() -> String {
    "z".repeat(JUNK_CHARS)
}

fn short(text: &str) -> String {
    symbiose_domain::input::echo(text)
}

fn report(problems: &BTreeSet<String>) -> String {
    problems.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
}

fn timestamp(seconds_from_now: i64) -> Value {
    timestamp_of(now_s() + seconds_from_now, 0)
}

fn timestamp_of(seconds: i64, nanos: i32) -> Value {
    let descriptor = wire::pool().get_message_by_name(TIMESTAMP).expect("the Timestamp message");
    let mut message = DynamicMessage::new(descriptor);
    message.set_field_by_name("seconds", Value::I64(seconds));
    message.set_field_by_name("nanos", Value::I32(nanos));
    Value::Message(message)
}

fn signed(kind: &Kind) -> bool {
    matches!(kind, Kind::Int32 | Kind::Int64 | Kind::Sint32 | Kind::Sint64 | Kind::Sfixed32 | Kind::Sfixed64)
}

/// `value` as a number of `kind`, saturated to its range.
fn number(kind: &Kind, value: i64) -> Value {
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(value.clamp(i32::MIN.into(), i32::MAX.into()) as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(value),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(value.clamp(0, u32::MAX.into()) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(value.max(0) as u64),
        Kind::Double | Kind::Float => float(kind, value as f64),
        other => panic!("{other:?} is not a number"),
    }
}

fn float(kind: &Kind, value: f64) -> Value {
    if *kind == Kind::Float { Value::F32(value as f32) } else { Value::F64(value) }
}

/// The values of `kind` farthest from any sensible one.
fn extremes(kind: &Kind) -> Vec<Value> {
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            vec![Value::I32(-1), Value::I32(i32::MIN), Value::I32(i32::MAX), Value::I32(0)]
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            vec![Value::I64(-1), Value::I64(i64::MIN), Value::I64(i64::MAX), Value::I64(0)]
        }
        Kind::Uint32 | Kind::Fixed32 => vec![Value::U32(u32::MAX), Value::U32(0)],
        Kind::Uint64 | Kind::Fixed64 => vec![Value::U64(u64::MAX), Value::U64(0)],
        other => panic!("{other:?} is not an integer"),
    }
}
