//! A hot offer under contention inside one process: commands on one aggregate take turns, so
//! no legitimate caller is answered ABORTED (or UNAVAILABLE) however many arrive at once, and
//! the totals are exact.

use std::num::NonZeroU32;

use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{self, pallet_terms, pallets, publish};
use uuid::Uuid;

/// Reservations sent at once on one offer.
const RESERVATIONS: i64 = 200;
/// Buyers whose proposals on one offer are accepted at once by both sides: twice as many
/// acceptances.
const BUYERS: usize = 40;

/// A server whose rate limit does not stand in the way: the point is the aggregate.
async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.rate_limit_per_second = NonZeroU32::new(100_000).expect("non-zero");
        config.rate_limit_burst = NonZeroU32::new(100_000).expect("non-zero");
    })
    .await
    .expect("server")
}

async fn available(server: &TestServer, token: &str, listing: &str) -> pb::Listing {
    ListingServiceClient::new(server.authed(token).await.expect("channel"))
        .get_listing(pb::GetListingRequest { listing_id: listing.into() })
        .await
        .expect("listing")
        .into_inner()
        .listing
        .expect("a listing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_reservations_on_one_offer_all_succeed_exactly() {
    let server = server().await;
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 1_000, 350))
            .await
            .expect("offer");
    let service_token = fixtures::service_token(&server).expect("a service token");
    let channel = server.authed(&service_token).await.expect("channel");
    let mut tasks = Vec::new();
    for index in 0..RESERVATIONS {
        let mut service = ListingServiceClient::new(channel.clone());
        let offer = offer.clone();
        tasks.push(tokio::spawn(async move {
            let count = 1 + index % 3;
            let answer = service
                .reserve_quantity(pb::ReserveQuantityRequest {
                    request_id: String::new(),
                    listing_id: offer,
                    reservation_id: Uuid::now_v7().to_string(),
                    quantity: Some(pallets(count)),
                })
                .await;
            (count, answer)
        }));
    }
    let mut granted = 0;
    let mut failed = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (count, Ok(_)) => granted += count,
            (_, Err(status)) => failed.push(format!("{:?}: {}", status.code(), status.message())),
        }
    }
    assert!(failed.is_empty(), "{} of {RESERVATIONS} reservations failed: {failed:?}", failed.len());
    let asked: i64 = (0..RESERVATIONS).map(|index| 1 + index % 3).sum();
    assert_eq!(granted, asked, "every reservation fits in 1,000 pallets");
    let listing = available(&server, &seller.token, &offer).await;
    assert_eq!(listing.open_reservations.len(), RESERVATIONS as usize);
    let reserved: i64 = listing
        .open_reservations
        .iter()
        .map(|reservation| reservation.quantity.as_ref().expect("a quantity").amount_milli)
        .sum();
    assert_eq!(reserved, asked * 1000, "the stream holds exactly what was granted");
    assert_eq!(listing.available.expect("available").amount_milli, 1_000_000 - asked * 1000);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighty_concurrent_acceptances_on_one_offer_conclude_every_proposal() {
    let server = server().await;
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let (offer, _) =
        publish(&server, &seller.token, pallet_terms(pb::ListingSide::Offer, &seller.site_id, 40, 350))
            .await
            .expect("offer");
    let buyers = fixtures::strasbourg_buyers(&server, BUYERS, 3_000, 1).await.expect("buyers");
    // The proposer proposes the offer to every request; wait for each proposal.
    let mut proposals = Vec::new();
    for (buyer, request) in &buyers {
        let proposal = fixtures::first_proposal(&server, &buyer.token, request).await.expect("a proposal");
        proposals.push((buyer.token.clone(), proposal.proposal_id, request.clone()));
    }
    // Both sides of every proposal accept at once: 80 acceptances, each last one reserving
    // on the same offer.
    let mut racing = Vec::new();
    for (buyer_token, proposal_id, _) in &proposals {
        for token in [buyer_token, &seller.token] {
            let mut client = MatchingServiceClient::new(server.authed(token).await.expect("channel"));
            let proposal_id = proposal_id.clone();
            racing.push(tokio::spawn(async move {
                client
                    .accept_proposal(matching::AcceptProposalRequest {
                        request_id: String::new(),
                        proposal_id,
                    })
                    .await
            }));
        }
    }
    let mut failed = Vec::new();
    let mut deals = 0;
    for outcome in racing {
        match outcome.await.expect("task") {
            Ok(accepted) => deals += accepted.into_inner().deals.len(),
            Err(status) => failed.push(format!("{:?}: {}", status.code(), status.message())),
        }
    }
    assert!(failed.is_empty(), "{} of {} acceptances failed: {failed:?}", failed.len(), 2 * BUYERS);
    assert!(deals >= BUYERS, "each proposal's last acceptance answers its deal, {deals}");
    for (buyer_token, proposal_id, request) in &proposals {
        let mut client = MatchingServiceClient::new(server.authed(buyer_token).await.expect("channel"));
        let listed = client
            .list_proposals(matching::ListProposalsRequest {
                listing_id: request.clone(),
                ..Default::default()
            })
            .await
            .expect("list proposals")
            .into_inner()
            .proposals;
        let proposal = listed
            .iter()
            .find(|proposal| &proposal.proposal_id == proposal_id)
            .expect("the proposal is listed");
        assert_eq!(
            proposal.state(),
            matching::ProposalState::Concluded,
            "proposal {proposal_id} with every acceptance in"
        );
    }
    let listing = available(&server, &seller.token, &offer).await;
    assert_eq!(listing.available.map_or(0, |quantity| quantity.amount_milli), 0, "40 lots of 1 in 40");
    assert_eq!(listing.open_reservations.len(), BUYERS);
    server.stop().await.expect("stop");
}
