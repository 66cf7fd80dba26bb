//! The log of `tests/fixtures/log-v1`, written once by the code of commit ee67ed4, must load
//! into the same views and aggregates with every later version of the code: the server starts
//! on a copy of it, every read of the public API is dumped as canonical JSON, and the dump must
//! equal `expected.json`, which the code of that commit produced from the same log with this
//! same file.
//!
//! `SYMBIOSE_FIXTURE_BLESS=1` writes `expected.json` instead of comparing: only ever with the
//! code that wrote the log (see the folder's README).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, ReflectMessage as _, Value};
use symbiose_domain::Role;
use symbiose_kit::auth::{Claims, KEYS_DIR, TokenAuthority};
use symbiose_proto::catalog::v1 as catalog;
use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::{AuthedChannel, TestServer, TestStore};
use uuid::Uuid;

/// The fixture: the server's data directory, the shipments' ids and the expected dump.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/log-v1");
/// The position of the fixture's last event (`symbiose store verify --data-dir data`): every
/// read that takes a `min_position` waits for its view to have applied the whole log.
const LAST_POSITION: u64 = 135;
/// Small pages, so that reading to the end goes through several of them.
const PAGE_SIZE: u32 = 4;
/// Most pages of one list before the dump calls it endless.
const PAGES_MAX: usize = 100;
/// Validity of the tokens the dump makes, in seconds.
const TOKEN_TTL_S: u64 = 3600;
/// Fields left out of the dump, as `<message full name>.<field name>`: none changes with the
/// start or the day the dump is taken (see the fixture's README).
const EXCLUDED_FIELDS: &[&str] = &[];
/// How many differing lines a failure prints.
const DIFF_LINES_MAX: usize = 40;
/// Longest part of a differing line a failure prints.
const EXCERPT_CHARS: usize = 160;

#[tokio::test(flavor = "multi_thread")]
async fn a_log_written_before_the_contracts_loads_into_the_same_views() -> anyhow::Result<()> {
    let fixture = Path::new(FIXTURE);
    let copy = tempfile::tempdir().context("a directory for the fixture's copy")?;
    let data_dir = copy.path().join("data");
    copy_dir(&fixture.join("data"), &data_dir)?;
    // The fixture is an embedded store's log (with the checkpoints that go with it): it is
    // read by that backend, whatever the environment says.
    let server = TestServer::start_on(TestStore::Embedded, |config| {
        config.data_dir = data_dir.clone();
        config.rate_limit_per_second = std::num::NonZeroU32::MAX;
        config.rate_limit_burst = std::num::NonZeroU32::MAX;
    })
    .await?;
    let shipments =
        std::fs::read_to_string(fixture.join("shipments")).context("reading the shipments' ids")?;
    let shipments: Vec<&str> = shipments.split_whitespace().collect();
    let dump = Dump::new(&server, &data_dir)?.all(&shipments).await?;
    server.stop().await?;
    let actual = dump.pretty();

    let expected_path = fixture.join("expected.json");
    if std::env::var_os("SYMBIOSE_FIXTURE_BLESS").is_some_and(|value| value == "1") {
        std::fs::write(&expected_path, &actual).context("writing expected.json")?;
        eprintln!("wrote {}", expected_path.display());
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).context("reading expected.json")?;
    if expected != actual {
        let actual_path = std::env::temp_dir().join("symbiose-fixture-log-v1-actual.json");
        let _ = std::fs::write(&actual_path, &actual);
        panic!(
            "the views built from the fixture log differ from expected.json (the whole dump: {}):\n{}",
            actual_path.display(),
            diff(&expected, &actual)
        );
    }
    Ok(())
}

/// Copies the directory `from` to `to` (created), files and subdirectories.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The first lines that differ, with their numbers, and how many differ in all.
fn diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = format!("expected {} lines, got {} lines\n", expected.len(), actual.len());
    let mut differing = 0;
    for index in 0..expected.len().max(actual.len()) {
        let (left, right) = (expected.get(index), actual.get(index));
        if left == right {
            continue;
        }
        differing += 1;
        if differing <= DIFF_LINES_MAX {
            let (left, right) = excerpts(left.unwrap_or(&"<none>"), right.unwrap_or(&"<none>"));
            let _ = writeln!(out, "line {}:\n  - {left}\n  + {right}", index + 1);
        }
    }
    let _ = writeln!(out, "{differing} lines differ (the first {DIFF_LINES_MAX} shown)");
    out
}

/// Two differing lines as they are, or, when long (a printed document), the part of each
/// around the first character where they differ.
fn excerpts(left: &str, right: &str) -> (String, String) {
    if left.len() <= EXCERPT_CHARS && right.len() <= EXCERPT_CHARS {
        return (left.to_owned(), right.to_owned());
    }
    let common = left.chars().zip(right.chars()).take_while(|(a, b)| a == b).count();
    let start = common.saturating_sub(EXCERPT_CHARS / 2);
    let cut = |line: &str| -> String {
        let excerpt: String = line.chars().skip(start).take(EXCERPT_CHARS).collect();
        format!("(from character {}) ...{excerpt}...", start + 1)
    };
    (cut(left), cut(right))
}

/// A JSON value with its object keys sorted: what the dump compares and prints.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Bool(bool),
    /// A number or a 64-bit integer, as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
    }

    /// The items of a list whose order the API does not promise, sorted by their text.
    fn sorted(mut items: Vec<Json>) -> Json {
        items.sort_by_cached_key(Json::pretty);
        Json::Array(items)
    }

    fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = |depth: usize| "  ".repeat(depth);
        match self {
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Number(value) => out.push_str(value),
            Json::String(value) => write_string(out, value),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push_str("[\n");
                for (index, item) in items.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    item.write(out, indent + 1);
                    out.push_str(if index + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) => {
                out.push_str("{\n");
                for (index, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                    out.push_str(if index + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, value: &str) {
    out.push('"');
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if (control as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", control as u32);
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

/// The descriptors of every message of the API, from the proto crate.
fn pool() -> &'static DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(symbiose_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
    })
}

/// `message` as JSON: protobuf's JSON names, every field (default values too), enums by name,
/// 64-bit integers as strings, maps by key, well-known types as their fields.
fn json<M: prost::Message>(message: &M) -> Json {
    let rust_name = std::any::type_name::<M>();
    let name = format!("symbiose.{}", rust_name.trim_start_matches("symbiose_proto::").replace("::", "."));
    let descriptor = pool().get_message_by_name(&name).unwrap_or_else(|| panic!("no message {name}"));
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .unwrap_or_else(|error| panic!("{name} decodes: {error}"));
    dynamic_json(&dynamic)
}

fn dynamic_json(message: &DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    let mut fields = BTreeMap::new();
    for field in descriptor.fields() {
        if EXCLUDED_FIELDS.contains(&format!("{}.{}", descriptor.full_name(), field.name()).as_str()) {
            continue;
        }
        let value = message.get_field(&field);
        fields.insert(field.json_name().to_owned(), value_json(&value, &field.kind()));
    }
    Json::Object(fields)
}

fn value_json(value: &Value, kind: &Kind) -> Json {
    match value {
        Value::Bool(value) => Json::Bool(*value),
        Value::I32(value) => Json::Number(value.to_string()),
        Value::U32(value) => Json::Number(value.to_string()),
        Value::I64(value) => Json::String(value.to_string()),
        Value::U64(value) => Json::String(value.to_string()),
        Value::F32(value) => Json::Number(format!("{value:?}")),
        Value::F64(value) => Json::Number(format!("{value:?}")),
        Value::String(value) => Json::String(value.clone()),
        Value::Bytes(value) => Json::String(value.iter().map(|byte| format!("{byte:02x}")).collect()),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(descriptor) => Json::String(
                descriptor
                    .get_value(*number)
                    .map_or_else(|| number.to_string(), |value| value.name().to_owned()),
            ),
            _ => Json::Number(number.to_string()),
        },
        Value::Message(message) => dynamic_json(message),
        Value::List(items) => Json::Array(items.iter().map(|item| value_json(item, kind)).collect()),
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            Json::Object(
                entries
                    .iter()
                    .map(|(key, value)| {
                        let key = match key {
                            MapKey::Bool(key) => key.to_string(),
                            MapKey::I32(key) => key.to_string(),
                            MapKey::I64(key) => key.to_string(),
                            MapKey::U32(key) => key.to_string(),
                            MapKey::U64(key) => key.to_string(),
                            MapKey::String(key) => key.clone(),
                        };
                        (key, value_json(value, &value_kind))
                    })
                    .collect(),
            )
        }
    }
}

/// A call's answer as JSON, or its status code when it is refused.
fn answer<M: prost::Message>(result: Result<tonic::Response<M>, tonic::Status>) -> Json {
    match result {
        Ok(response) => json(&response.into_inner()),
        Err(status) => refused(&status),
    }
}

fn refused(status: &tonic::Status) -> Json {
    Json::object([("refused", Json::String(format!("{:?}", status.code())))])
}

/// Every item of a paged list, read through `fetch` (a page token in, the page's items and the
/// next token out) to the end.
async fn pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let (mut items, mut token) = (Vec::new(), String::new());
    for _ in 0..PAGES_MAX {
        let (page, next) = fetch(token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
    anyhow::bail!("the pages do not end")
}

/// An organization of the fixture as the dump sees it: its id and a token with its roles.
struct Member {
    id: String,
    token: String,
}

/// The dump of every view and aggregate the public API shows.
struct Dump<'a> {
    server: &'a TestServer,
    authority: TokenAuthority,
}

impl<'a> Dump<'a> {
    fn new(server: &'a TestServer, data_dir: &Path) -> anyhow::Result<Dump<'a>> {
        let keys: PathBuf = data_dir.join(KEYS_DIR);
        let (authority, created) =
            TokenAuthority::load_or_create(&keys).context("loading the fixture's key")?;
        anyhow::ensure!(!created, "the fixture has no signing key in {}", keys.display());
        Ok(Dump { server, authority })
    }

    /// A token of `organization` with `roles`, signed with the fixture's own key: valid now,
    /// whenever the test runs.
    fn token(&self, organization: Uuid, roles: Vec<Role>) -> String {
        let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        self.authority.issue(&Claims {
            organization_id: organization,
            roles,
            issued_at_s: now_s,
            expires_at_s: now_s + TOKEN_TTL_S,
            token_id: Uuid::now_v7(),
        })
    }

    async fn channel(&self, token: &str) -> anyhow::Result<AuthedChannel> {
        self.server.authed(token).await
    }

    async fn operator(&self) -> anyhow::Result<AuthedChannel> {
        self.server.operator().await
    }

    async fn all(&self, shipments: &[&str]) -> anyhow::Result<Json> {
        let (members, organizations) = self.organizations().await?;
        let mut dump = BTreeMap::new();
        let mut listing_ids = Vec::new();
        let mut deals = BTreeMap::new();
        let mut per_member = BTreeMap::new();
        for member in &members {
            let (views, listed, deal_ids) = self.member(member).await?;
            listing_ids.extend(listed);
            for deal in deal_ids {
                deals.entry(deal).or_insert_with(|| member.token.clone());
            }
            per_member.insert(member.id.clone(), views);
        }
        dump.insert("organizations".to_owned(), organizations);
        dump.insert("members".to_owned(), Json::Object(per_member));
        dump.insert("deals".to_owned(), self.deals(&deals).await?);
        dump.insert("shipments".to_owned(), self.shipments(shipments).await?);
        dump.insert("catalog".to_owned(), self.catalog(&listing_ids).await?);
        dump.insert("platform".to_owned(), self.platform().await?);
        Ok(Json::Object(dump))
    }

    /// Every organization as the operator reads it (the list, then each one whole), and a
    /// token for each.
    async fn organizations(&self) -> anyhow::Result<(Vec<Member>, Json)> {
        let client = OrganizationServiceClient::new(self.operator().await?);
        let listed = pages(|page_token| {
            let mut client = client.clone();
            async move {
                let page = client
                    .list_organizations(listings::ListOrganizationsRequest {
                        page_size: PAGE_SIZE as i32,
                        page_token,
                        min_position: LAST_POSITION,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                Ok((page.organizations, page.next_page_token))
            }
        })
        .await?;
        let mut members = Vec::new();
        let mut whole = BTreeMap::new();
        for organization in &listed {
            let id: Uuid = organization.organization_id.parse().context("an organization's id")?;
            let roles = organization
                .roles
                .iter()
                .filter_map(|role| match common::Role::try_from(*role).ok()? {
                    common::Role::Producer => Some(Role::Producer),
                    common::Role::Buyer => Some(Role::Buyer),
                    common::Role::Recycler => Some(Role::Recycler),
                    common::Role::Carrier => Some(Role::Carrier),
                    _ => None,
                })
                .collect();
            members.push(Member { id: organization.organization_id.clone(), token: self.token(id, roles) });
            let got = client
                .clone()
                .get_organization(listings::GetOrganizationRequest {
                    organization_id: organization.organization_id.clone(),
                })
                .await;
            whole.insert(organization.organization_id.clone(), answer(got));
        }
        let listed = Json::sorted(listed.iter().map(json).collect());
        Ok((members, Json::object([("list", listed), ("get", Json::Object(whole))])))
    }

    /// What one organization sees of its own: its listings (each also read alone), the
    /// proposals naming them, its deals, pallet balances, accounts, statement and invoices
    /// (each also read alone). Also the ids of its listings and deals.
    async fn member(&self, member: &Member) -> anyhow::Result<(Json, Vec<String>, Vec<String>)> {
        let channel = self.channel(&member.token).await?;
        let listing_client = ListingServiceClient::new(channel.clone());
        let listed = pages(|page_token| {
            let mut client = listing_client.clone();
            async move {
                let page = client
                    .list_my_listings(listings::ListMyListingsRequest {
                        page_size: PAGE_SIZE as i32,
                        page_token,
                        min_position: LAST_POSITION,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                Ok((page.listings, page.next_page_token))
            }
        })
        .await?;
        let listing_ids: Vec<String> = listed.iter().map(|listing| listing.listing_id.clone()).collect();
        let mut each_listing = BTreeMap::new();
        for id in &listing_ids {
            let got = listing_client
                .clone()
                .get_listing(listings::GetListingRequest { listing_id: id.clone() })
                .await;
            each_listing.insert(id.clone(), answer(got));
        }

        let matching_client = MatchingServiceClient::new(channel.clone());
        let proposals = pages(|page_token| {
            let mut client = matching_client.clone();
            async move {
                let page = client
                    .list_proposals(matching::ListProposalsRequest {
                        page_size: PAGE_SIZE,
                        page_token,
                        min_position: LAST_POSITION,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                Ok((page.proposals, page.next_page_token))
            }
        })
        .await?;
        let deals = pages(|page_token| {
            let mut client = matching_client.clone();
            async move {
                let page = client
                    .list_deals(matching::ListDealsRequest {
                        page_size: PAGE_SIZE,
                        page_token,
                        min_position: LAST_POSITION,
                    })
                    .await?
                    .into_inner();
                Ok((page.deals, page.next_page_token))
            }
        })
        .await?;
        let deal_ids: Vec<String> = deals.iter().map(|deal| deal.deal_id.clone()).collect();

        let pallet_balances = LogisticsServiceClient::new(channel.clone())
            .get_pallet_balances(logistics::GetPalletBalancesRequest { min_position: LAST_POSITION })
            .await
            .map(|response| Json::sorted(response.into_inner().balances.iter().map(json).collect()))
            .unwrap_or_else(|status| refused(&status));

        let settlement_client = SettlementServiceClient::new(channel.clone());
        let balances = settlement_client
            .clone()
            .get_balances(settlement::GetBalancesRequest {
                organization_id: String::new(),
                min_position: LAST_POSITION,
            })
            .await
            .map(|response| Json::sorted(response.into_inner().balances.iter().map(json).collect()))
            .unwrap_or_else(|status| refused(&status));
        let statement = self.statement(&settlement_client, "EUR", "").await?;
        let invoices = pages(|page_token| {
            let mut client = settlement_client.clone();
            async move {
                let page = client
                    .list_invoices(settlement::ListInvoicesRequest {
                        page_size: PAGE_SIZE,
                        page_token,
                        min_position: LAST_POSITION,
                    })
                    .await?
                    .into_inner();
                Ok((page.invoices, page.next_page_token))
            }
        })
        .await?;
        let mut each_invoice = BTreeMap::new();
        for invoice in &invoices {
            let got = settlement_client
                .clone()
                .get_invoice(settlement::GetInvoiceRequest {
                    invoice_id: invoice.invoice_id.clone(),
                    min_position: LAST_POSITION,
                })
                .await;
            each_invoice.insert(invoice.invoice_id.clone(), answer(got));
        }

        let views = Json::object([
            ("listings", Json::sorted(listed.iter().map(json).collect())),
            ("listing", Json::Object(each_listing)),
            ("proposals", Json::sorted(proposals.iter().map(json).collect())),
            ("deals", Json::sorted(deals.iter().map(json).collect())),
            ("palletBalances", pallet_balances),
            ("balances", balances),
            ("statementEur", statement),
            ("invoices", Json::sorted(invoices.iter().map(json).collect())),
            ("invoice", Json::Object(each_invoice)),
        ]);
        Ok((views, listing_ids, deal_ids))
    }

    /// The posted movements of `account` (empty: the caller's own) in `currency`, in order.
    async fn statement(
        &self,
        client: &SettlementServiceClient<AuthedChannel>,
        currency: &str,
        account: &str,
    ) -> anyhow::Result<Json> {
        let lines = pages(|page_token| {
            let mut client = client.clone();
            let (currency_code, account) = (currency.to_owned(), account.to_owned());
            async move {
                let page = client
                    .get_statement(settlement::GetStatementRequest {
                        currency_code,
                        account,
                        page_size: PAGE_SIZE,
                        page_token,
                        min_position: LAST_POSITION,
                    })
                    .await?
                    .into_inner();
                Ok((page.lines, page.next_page_token))
            }
        })
        .await?;
        Ok(Json::Array(lines.iter().map(json).collect()))
    }

    /// Each deal as the operator reads it, and its transfers as a party (`deals`: each deal and
    /// the token of a party) reads them, in the order they were made.
    async fn deals(&self, deals: &BTreeMap<String, String>) -> anyhow::Result<Json> {
        let operator = MatchingServiceClient::new(self.operator().await?);
        let mut out = BTreeMap::new();
        for (deal_id, party) in deals {
            let deal = operator
                .clone()
                .get_deal(matching::GetDealRequest { deal_id: deal_id.clone(), min_position: LAST_POSITION })
                .await;
            let client = SettlementServiceClient::new(self.channel(party).await?);
            let mut escrow_refused = String::new();
            let transfers = pages(|page_token| {
                let mut client = client.clone();
                let deal_id = deal_id.clone();
                async move {
                    let page = client
                        .list_deal_transfers(settlement::ListDealTransfersRequest {
                            deal_id,
                            min_position: LAST_POSITION,
                            page_size: PAGE_SIZE,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((vec![(page.transfers, page.escrow_refused)], page.next_page_token))
                }
            })
            .await?;
            let mut listed = Vec::new();
            for (page, refused) in transfers {
                listed.extend(page.iter().map(json));
                escrow_refused = refused;
            }
            out.insert(
                deal_id.clone(),
                Json::object([
                    ("deal", answer(deal)),
                    ("transfers", Json::Array(listed)),
                    ("escrowRefused", Json::String(escrow_refused)),
                ]),
            );
        }
        Ok(Json::Object(out))
    }

    /// Each shipment of the fixture with its history, and its Annex VII data and text (or the
    /// refusal, for a domestic one), as the operator reads them.
    async fn shipments(&self, shipments: &[&str]) -> anyhow::Result<Json> {
        let client = LogisticsServiceClient::new(self.operator().await?);
        let mut out = BTreeMap::new();
        for id in shipments {
            let shipment = client
                .clone()
                .get_shipment(logistics::GetShipmentRequest {
                    shipment_id: (*id).to_owned(),
                    min_position: LAST_POSITION,
                })
                .await;
            let annex = client
                .clone()
                .get_annex_vii(logistics::GetAnnexViiRequest {
                    shipment_id: (*id).to_owned(),
                    min_position: LAST_POSITION,
                    include_pdf: false,
                })
                .await;
            out.insert(
                (*id).to_owned(),
                Json::object([("shipment", answer(shipment)), ("annexVii", answer(annex))]),
            );
        }
        Ok(Json::Object(out))
    }

    /// The catalog: every entry within 1000 km of Strasbourg (every site of the fixture), and
    /// each listing of the fixture read alone (an entry, or not found for a closed one).
    async fn catalog(&self, listing_ids: &[String]) -> anyhow::Result<Json> {
        let client = CatalogServiceClient::new(self.operator().await?);
        let strasbourg = symbiose_domain::geo::place("Strasbourg").context("Strasbourg is in the table")?;
        let near: common::GeoPoint = strasbourg.point.into();
        let entries = pages(|page_token| {
            let mut client = client.clone();
            async move {
                let page = client
                    .search_catalog(catalog::SearchCatalogRequest {
                        near: Some(near),
                        radius_km: 1000,
                        page_size: PAGE_SIZE as i32,
                        page_token,
                        language: "en".into(),
                        min_position: LAST_POSITION,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                Ok((page.entries, page.next_page_token))
            }
        })
        .await?;
        let mut each = BTreeMap::new();
        for id in listing_ids {
            let got = client
                .clone()
                .get_catalog_entry(catalog::GetCatalogEntryRequest {
                    listing_id: id.clone(),
                    language: "en".into(),
                    min_position: LAST_POSITION,
                })
                .await;
            each.insert(id.clone(), answer(got));
        }
        Ok(Json::object([
            ("search", Json::sorted(entries.iter().map(json).collect())),
            ("entry", Json::Object(each)),
        ]))
    }

    /// The platform's accounts and the statement of each, as the operator reads them.
    async fn platform(&self) -> anyhow::Result<Json> {
        let client = SettlementServiceClient::new(self.operator().await?);
        let balances = client
            .clone()
            .get_balances(settlement::GetBalancesRequest {
                organization_id: String::new(),
                min_position: LAST_POSITION,
            })
            .await?
            .into_inner()
            .balances;
        let mut statements = BTreeMap::new();
        for balance in &balances {
            let statement = self.statement(&client, &balance.currency_code, &balance.account).await?;
            statements.insert(balance.account.clone(), statement);
        }
        Ok(Json::object([
            ("balances", Json::sorted(balances.iter().map(json).collect())),
            ("statements", Json::Object(statements)),
        ]))
    }
}
