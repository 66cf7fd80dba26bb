//! The listings' application shell: load a listing from its stream, look up what the rules
//! need in the directory (the owner's site, its permits), decide, append with the expected
//! version, retry on conflict; the listings view (a projection) for "my listings"; and the
//! sweeper that expires listings once their expiry passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use symbiose_domain::{MaterialFamily, Role, Unit};
use symbiose_eventstore::{EventStore, Position, RecordedEvent, StreamName};
use symbiose_kit::ApiError;
use symbiose_shell::snapshot::{self, Snapshot, Snapshots};
use symbiose_shell::{Actor, Decision, EventIds, Followed, Loaded, Shell, Written, now_ms};
use uuid::Uuid;

use crate::directory::Directory;
use crate::error::{ListingsError, listing_rejected};
use crate::listing::{self, Command, Context, Listing, ListingState, Place, Terms};
use crate::listing_codec;
use crate::organization::OrganizationState;

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
        let loaded = self.directory.load(owner).await?;
        let OrganizationState::Registered(organization) = loaded.state else {
            return Err(
                ApiError::FailedPrecondition(format!("organization {owner} is not registered")).into()
            );
        };
        // The token's roles were checked; the directory's are checked too, so a role the
        // operator took away stops working before the token expires.
        let holds = match terms.side {
            listing::Side::Offer => organization.roles.contains(&Role::Producer),
            listing::Side::Request => {
                organization.roles.contains(&Role::Buyer) || organization.roles.contains(&Role::Recycler)
            }
        };
        if !holds {
            return Err(ListingsError::Api(ApiError::PermissionDenied(format!(
                "organization {owner} no longer holds the role this listing needs"
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
