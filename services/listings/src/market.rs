//! The listings' application shell: load a listing from its stream, look up what the rules
//! need in the directory (the owner's site, its permits), decide, append with the expected
//! version, retry on conflict; the listings view (a projection) for "my listings"; and the
//! sweeper that expires listings once their expiry passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use symbiose_domain::{MaterialFamily, Role, Unit};
use symbiose_eventstore::{
    APPEND_MANY_MAX, Append, EventData, EventStore, ExpectedVersion, Position, RecordedEvent, StoreError,
    StreamName,
};
use symbiose_kit::ApiError;
use symbiose_proto::convert::FieldError;
use symbiose_shell::snapshot::{self, Snapshot, Snapshots};
use symbiose_shell::{Actor, Decision, EventIds, Followed, Loaded, Shell, Written, now_ms};
use uuid::Uuid;

use crate::directory::Directory;
use crate::error::{ListingsError, listing_rejected};
use crate::import;
use crate::listing::{self, Command, Context, Listing, ListingState, Place, Terms};
use crate::listing_codec;
use crate::organization::{Organization, OrganizationState};

/// How often the sweeper looks for listings past their expiry.
pub(crate) const EXPIRY_SWEEP_MS: u64 = 1000;
/// Most listings the sweeper expires in one pass.
const EXPIRY_SWEEP_LISTINGS_MAX: usize = 100;
/// Listings whose last loaded state is kept, at most: the hot ones.
const LOADED_LISTINGS_MAX: u64 = 10_000;

fn listing_stream(id: Uuid) -> StreamName {
    StreamName::for_aggregate("listing", id).expect("a uuid makes a valid stream name")
}

/// Every listing, as the log says, never written to by commands.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct View {
    listings: BTreeMap<Uuid, ListingState>,
}

impl symbiose_shell::View for View {
    fn apply(&mut self, recorded: &RecordedEvent) {
        apply(self, recorded);
    }
}

impl Snapshot for View {
    const NAME: &'static str = "listings.market";

    fn encode(&self) -> Result<Vec<u8>, String> {
        snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<View, String> {
        snapshot::decode(bytes)
    }
}

#[derive(Debug)]
pub struct Market<S> {
    shell: Shell<S>,
    directory: Arc<Directory<S>>,
    view: Followed<View>,
    /// Listings as last loaded, each at its version: a command reads only the events written
    /// since, not the whole stream, so a hot offer's thousandth reservation does not read the
    /// 999 before it (it still copies the state, which holds at most 1,000 reservations).
    loaded: moka::sync::Cache<Uuid, Arc<Loaded<ListingState>>>,
}

impl<S: EventStore> Market<S> {
    /// The market over `store`, with its view fed by a task that follows the log from its
    /// snapshot (saved as `snapshots` says; it stops with the store). The sweeper that expires listings is started apart ([`Market::sweep`]):
    /// it runs in one process of the platform.
    pub fn start(store: S, directory: Arc<Directory<S>>, snapshots: Snapshots) -> Arc<Market<S>> {
        let view = Followed::start_snapshotted(store.clone(), "listings view", View::default(), snapshots);
        Arc::new(Market {
            shell: Shell::new(store, EventIds::Attempted),
            directory,
            view,
            loaded: moka::sync::Cache::new(LOADED_LISTINGS_MAX),
        })
    }

    /// Starts the sweeper that expires listings past their end, every few seconds, until
    /// `stopped` completes or the store closes. Work for one process of the platform: replicas
    /// run it under a lease.
    pub fn sweep(
        self: &Arc<Self>,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let market = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::select! {
                () = sweep_expired(market) => {}
                () = stopped => {}
            }
        })
    }

    /// The listing `id` as its stream says now: from its cached state, with the events since.
    pub async fn load(&self, id: Uuid) -> Result<Loaded<ListingState>, ApiError> {
        let cached = self.loaded.get(&id).map(|cached| (*cached).clone()).unwrap_or_default();
        let loaded = symbiose_shell::load_from(
            self.shell.store(),
            &listing_stream(id),
            symbiose_listings_contract::decode_recorded_listing,
            listing::evolve,
            cached,
        )
        .await?;
        if loaded.version.is_some() {
            self.loaded.insert(id, Arc::new(loaded.clone()));
        }
        Ok(loaded)
    }

    /// Where the lot is, from the owner's site, and whether the owner's permits accept the
    /// terms' waste if it is hazardous.
    async fn resolve(&self, owner: Uuid, terms: &Terms) -> Result<(Place, bool), ListingsError> {
        let organization = self.registered(owner).await?;
        place_of(&organization, terms)
    }

    /// The organization `owner` as the directory says now; refused if it is not registered.
    async fn registered(&self, owner: Uuid) -> Result<Box<Organization>, ListingsError> {
        let loaded = self.directory.load(owner).await?;
        let OrganizationState::Registered(organization) = loaded.state else {
            return Err(
                ApiError::FailedPrecondition(format!("organization {owner} is not registered")).into()
            );
        };
        Ok(organization)
    }

    /// Creates a draft listing of `owner`.
    pub async fn create(
        &self,
        owner: Uuid,
        actor: &Actor,
        terms: Terms,
    ) -> Result<(Uuid, Written), ListingsError> {
        let (place, may_receive) = self.resolve(owner, &terms).await?;
        let id = actor.derive_id(&format!("listing/{owner}"));
        let command = Command::Create { id, owner, terms, place };
        let written = self.execute(id, actor, command, may_receive, |_| Ok(())).await?;
        Ok((id, written))
    }

    /// Amends a listing of `owner` (or any, for the operator).
    pub async fn amend(
        &self,
        id: Uuid,
        actor: &Actor,
        terms: Terms,
        authorize: impl Fn(&Listing) -> Result<(), ListingsError>,
    ) -> Result<(Written, Vec<String>), ListingsError> {
        let loaded = self.load(id).await?;
        let listing =
            loaded.state.listing().ok_or_else(|| ApiError::NotFound(format!("listing {id} not found")))?;
        authorize(listing)?;
        let changed = terms.changes_from(&listing.terms);
        let (place, may_receive) = self.resolve(listing.owner, &terms).await?;
        let written =
            self.execute(id, actor, Command::Amend { terms, place }, may_receive, authorize).await?;
        Ok((written, changed))
    }

    /// Applies the lines of an import for `owner`: each valid line becomes a listing whose id
    /// derives from the owner, `import_id` and the line's number, created (and published when
    /// `publish`) in one append to its new stream, so none is ever half-applied. Lines whose
    /// listing an earlier call of the same import wrote are left as they are and counted
    /// already present. Appends go [`APPEND_MANY_MAX`] at a time (the embedded store makes each
    /// group durable with one `fdatasync`); a failure of the store stops the import there, with
    /// every listing written so far whole: the same import sent again goes on from there.
    /// `may_hold` says whether the caller's token may create a listing of a side.
    pub(crate) async fn import(
        &self,
        owner: Uuid,
        import_id: &str,
        publish: bool,
        may_hold: impl Fn(listing::Side) -> Result<(), ListingsError> + Send + 'static,
        lines: Vec<import::Line>,
    ) -> Result<Imported, ListingsError> {
        let organization = self.registered(owner).await?;
        let metadata = Actor::new(owner, &format!("import/{import_id}"))?.metadata();
        let import_id = import_id.to_owned();
        // Deciding and encoding 100,000 listings is work for a blocking thread, not the
        // runtime's.
        let (mut imported, planned) = tokio::task::spawn_blocking(move || {
            plan_import(&organization, &import_id, publish, &may_hold, lines, &metadata)
        })
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("planning an import")))?;
        // What the view holds was written: such lines are not sent to the store again. The view
        // may lag behind the log; the store answers a repeat of the rest.
        // A listing held with other terms (amended since, or another file under the same
        // import_id) is sent anyway: the store tells a repeat of the same line (same event ids)
        // from another line (refused below).
        let planned: Vec<(u32, Append)> = {
            let view = self.view.read();
            planned
                .into_iter()
                .filter_map(|(number, id, terms, append)| {
                    let present = view
                        .listings
                        .get(&id)
                        .and_then(ListingState::listing)
                        .is_some_and(|held| held.terms == terms);
                    imported.already_present += u32::from(present);
                    (!present).then_some((number, append))
                })
                .collect()
        };
        let mut planned = planned.into_iter();
        loop {
            let batch: Vec<(u32, Append)> = planned.by_ref().take(APPEND_MANY_MAX).collect();
            if batch.is_empty() {
                break;
            }
            // A listing written before this batch answers as a repeat, at its first position.
            let head_before = self.shell.store().head();
            let (numbers, appends): (Vec<u32>, Vec<Append>) = batch.into_iter().unzip();
            for (number, answer) in numbers.into_iter().zip(self.shell.store().append_many(appends).await) {
                match answer {
                    Ok(appended) if appended.first_position < head_before => imported.already_present += 1,
                    Ok(appended) => {
                        imported.created += 1;
                        imported.position = imported.position.max(Some(appended.last_position));
                    }
                    Err(StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEvent { .. }) => {
                        imported.refused.push((
                            number,
                            FieldError::new(
                                "header.import_id",
                                "this line's listing was written before by this import_id with other \
                                 terms, or published otherwise: send changed lines under a new import_id",
                            ),
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        imported.refused.sort_by_key(|(number, _)| *number);
        Ok(imported)
    }

    /// Checks `authorize`, decides `command` on listing `id` and appends, through the shell.
    /// A request id already applied returns what it did.
    pub async fn execute(
        &self,
        id: Uuid,
        actor: &Actor,
        command: Command,
        owner_may_receive_hazardous: bool,
        authorize: impl Fn(&Listing) -> Result<(), ListingsError>,
    ) -> Result<Written, ListingsError> {
        let executed = self
            .shell
            .execute(
                &listing_stream(id),
                actor,
                || self.load(id),
                |loaded: &Loaded<ListingState>| {
                    if let Some(listing) = loaded.state.listing() {
                        authorize(listing).map_err(ApiError::from)?;
                    }
                    let context = Context { now_ms: now_ms(), owner_may_receive_hazardous };
                    let events = listing::decide(&loaded.state, command.clone(), &context)
                        .map_err(listing_rejected)?;
                    let unit = match &command {
                        Command::Create { terms, .. } | Command::Amend { terms, .. } => terms.quantity.unit(),
                        _ => loaded
                            .state
                            .listing()
                            .map_or(Unit::Piece, |listing| listing.terms.quantity.unit()),
                    };
                    let encoded = events.iter().map(|event| listing_codec::encode(id, event, unit)).collect();
                    Ok(Decision::new(encoded, ()))
                },
            )
            .await?;
        Ok(executed.written)
    }

    /// Waits, within a bound, for the view to reflect `position` (0: no wait).
    pub async fn wait_for_view(&self, position: Position) -> Result<(), ListingsError> {
        Ok(self.view.wait_for(position).await?)
    }

    /// `owner`'s listings in id order after `after`, filtered, at most `limit`, and whether
    /// more follow.
    pub fn list_of(
        &self,
        owner: Uuid,
        in_state: Option<fn(&ListingState) -> bool>,
        family: Option<MaterialFamily>,
        after: Option<Uuid>,
        limit: usize,
    ) -> (Vec<ListingState>, bool) {
        let view = self.view.read();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut matching =
            view.listings.range((start, std::ops::Bound::Unbounded)).map(|(_, state)| state).filter(
                |state| {
                    state.listing().is_some_and(|listing| {
                        listing.owner == owner && family.is_none_or(|family| listing.terms.family == family)
                    }) && in_state.is_none_or(|wanted| wanted(state))
                },
            );
        let page: Vec<ListingState> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        (page, more)
    }

    /// Listings past their expiry that are not closed yet, at most `limit`.
    fn past_expiry(&self, now_ms: i64, limit: usize) -> Vec<Uuid> {
        let view = self.view.read();
        view.listings
            .iter()
            .filter(|(_, state)| matches!(state, ListingState::Draft(_) | ListingState::Published(_)))
            .filter(|(_, state)| {
                state.listing().is_some_and(|listing| {
                    listing.terms.expires_at_ms <= now_ms && listing.reservations.is_empty()
                })
            })
            .map(|(id, _)| *id)
            .take(limit)
            .collect()
    }
}

/// What an import did with the lines of its file.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    /// The listing lines of the file.
    pub(crate) lines: u32,
    /// Listings this call wrote.
    pub(crate) created: u32,
    /// Lines an earlier call of the same import wrote.
    pub(crate) already_present: u32,
    /// The refused lines, each with the field at fault, in line order.
    pub(crate) refused: Vec<(u32, FieldError)>,
    /// The position of the last event written, if any was.
    pub(crate) position: Option<Position>,
}

/// Namespace of the ids an import derives: its listings' and their events'.
const IMPORT_NAMESPACE: Uuid = Uuid::from_u128(0x1a9f_7c3e_52d4_4b61_8e0a_3c7d_9b2f_6e15);

/// The listing of line `number` of import `import_id` of `owner`: the same every time the
/// import is sent, so a line already applied is found.
fn imported_listing_id(owner: Uuid, import_id: &str, number: u32) -> Uuid {
    Uuid::new_v5(&IMPORT_NAMESPACE, format!("{owner}/{import_id}/{number}").as_bytes())
}

/// The `index`th event an import writes to its listing `id`, of a line whose events' digest is
/// `digest`: the store recognises the same append sent again by it, and only that one.
fn imported_event_id(id: Uuid, index: usize, digest: Uuid) -> Uuid {
    Uuid::new_v5(&IMPORT_NAMESPACE, format!("{id}/{index}/{digest}").as_bytes())
}

/// Every line of an import decided: the refused ones in `Imported`, the others as the appends
/// that write them, with their line numbers and listing ids, in line order.
fn plan_import(
    organization: &Organization,
    import_id: &str,
    publish: bool,
    may_hold: &impl Fn(listing::Side) -> Result<(), ListingsError>,
    lines: Vec<import::Line>,
    metadata: &bytes::Bytes,
) -> (Imported, Vec<(u32, Uuid, Terms, Append)>) {
    let now_ms = now_ms();
    let mut imported = Imported { lines: lines.len() as u32, ..Imported::default() };
    let mut planned = Vec::with_capacity(lines.len());
    for line in lines {
        let id = imported_listing_id(organization.id, import_id, line.number);
        let decided = line.terms.map_err(ListingsError::from).and_then(|terms| {
            let events = decide_import(organization, id, terms.clone(), publish, now_ms, may_hold)?;
            Ok((terms, events))
        });
        match decided {
            Ok((terms, events)) => {
                // What the line wrote, in its events' ids: the same line sent again is a
                // repeat; another line under the same number is not.
                let mut written = Vec::new();
                for (event_type, payload) in &events {
                    written.extend_from_slice(event_type.as_bytes());
                    written.extend_from_slice(payload);
                }
                let digest = Uuid::new_v5(&IMPORT_NAMESPACE, &written);
                let events = events
                    .into_iter()
                    .enumerate()
                    .map(|(index, (event_type, payload))| {
                        EventData::new(imported_event_id(id, index, digest), event_type, payload)
                            .with_metadata(metadata.clone())
                    })
                    .collect();
                let stream = listing_stream(id);
                planned.push((
                    line.number,
                    id,
                    terms,
                    Append { stream, expected: ExpectedVersion::NoStream, events },
                ));
            }
            Err(error) => imported.refused.push((line.number, line_refusal(error))),
        }
    }
    (imported, planned)
}

/// The events of one imported listing, encoded: its creation as `CreateListing` decides it,
/// and its publication as `PublishListing` decides it when `publish`.
fn decide_import(
    organization: &Organization,
    id: Uuid,
    terms: Terms,
    publish: bool,
    now_ms: i64,
    may_hold: &impl Fn(listing::Side) -> Result<(), ListingsError>,
) -> Result<Vec<(&'static str, Vec<u8>)>, ListingsError> {
    may_hold(terms.side)?;
    let (place, may_receive) = place_of(organization, &terms)?;
    let unit = terms.quantity.unit();
    let context = Context { now_ms, owner_may_receive_hazardous: may_receive };
    let create = Command::Create { id, owner: organization.id, terms, place };
    let mut events = listing::decide(&ListingState::Absent, create, &context)?;
    if publish {
        let draft = events.iter().fold(ListingState::Absent, listing::evolve);
        events.extend(listing::decide(&draft, Command::Publish, &context)?);
    }
    Ok(events.iter().map(|event| listing_codec::encode(id, event, unit)).collect())
}

/// Why a line is refused, naming the field as `CreateListing` would; a refusal that is no
/// field's names the role the side needs or the whole line.
fn line_refusal(error: ListingsError) -> FieldError {
    let hazardous = matches!(error, ListingsError::Listing(listing::Rejection::HazardousWithoutPermit));
    match ApiError::from(error) {
        ApiError::InvalidArgument { field, message } => FieldError::new(field, message),
        ApiError::PermissionDenied(message) => FieldError::new("terms.side", message),
        error if hazardous => FieldError::new("terms.waste_code", error),
        error => FieldError::new("", error),
    }
}

/// Where the lot of `terms` is, from `organization`'s site, and whether its permits accept the
/// terms' waste if it is hazardous; refused if the directory no longer gives it the role the
/// side needs (the token's roles were checked: a role the operator took away stops working
/// before the token expires).
fn place_of(organization: &Organization, terms: &Terms) -> Result<(Place, bool), ListingsError> {
    let holds = match terms.side {
        listing::Side::Offer => organization.roles.contains(&Role::Producer),
        listing::Side::Request => {
            organization.roles.contains(&Role::Buyer) || organization.roles.contains(&Role::Recycler)
        }
    };
    if !holds {
        return Err(ListingsError::Api(ApiError::PermissionDenied(format!(
            "organization {} no longer holds the role this listing needs",
            organization.id
        ))));
    }
    let site = organization
        .site(terms.site_id)
        .ok_or_else(|| ListingsError::invalid("terms.site_id", "is not a site of your organization"))?;
    let place = Place { point: terms.location.unwrap_or(site.location), country: site.address.country };
    let now = now_ms();
    let may_receive = terms
        .waste_code
        .is_some_and(|code| organization.permits.iter().any(|permit| permit.accepts(code, now)));
    Ok((place, may_receive))
}

/// Applies one event of the log to the listings view; other contexts' events are skipped, and
/// a listing event that does not decode is logged and skipped, so one cannot stop the view.
fn apply(view: &mut View, recorded: &RecordedEvent) {
    if recorded.stream.category() != "listing" {
        return;
    }
    let Ok(id) = Uuid::parse_str(&recorded.stream.as_str()["listing-".len()..]) else { return };
    match symbiose_listings_contract::decode_recorded_listing(recorded) {
        Ok(event) => {
            let state = view.listings.remove(&id).unwrap_or_default();
            view.listings.insert(id, listing::evolve(state, &event));
        }
        Err(error) => {
            tracing::error!(position = %recorded.position, %error, "skipping a listing event that does not decode");
        }
    }
}

/// Expires listings once their expiry passes, until the market is dropped or the store closes.
async fn sweep_expired<S: EventStore>(market: std::sync::Weak<Market<S>>) {
    let system = Actor::system();
    let mut ticks = tokio::time::interval(Duration::from_millis(EXPIRY_SWEEP_MS));
    loop {
        ticks.tick().await;
        let Some(market) = market.upgrade() else { return };
        // The view stops following once the store closes: so does the sweeper.
        if !market.view.is_following() {
            return;
        }
        for id in market.past_expiry(now_ms(), EXPIRY_SWEEP_LISTINGS_MAX) {
            match market.execute(id, &system, Command::Expire, false, |_| Ok(())).await {
                Ok(_) => tracing::info!(listing = %id, "listing expired"),
                Err(error) => tracing::warn!(listing = %id, %error, "cannot expire a listing"),
            }
        }
    }
}
