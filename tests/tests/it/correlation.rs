//! One user action followed by its correlation id: the buyer's acceptance of a delivery, sent
//! with a known `traceparent`, and everything written because of it (the shipment closed, the
//! escrow posted and released, the invoice, the offer's and request's deliveries confirmed)
//! carries that trace id as its correlation id on NATS, and names as its causation the event
//! it reacts to, or, for what the acceptance wrote itself, the call (its span id).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use symbiose_feed::testing::NatsServer;
use symbiose_kit::trace::TraceContext;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures;
use tokio_stream::StreamExt as _;

use crate::settlement::{deliver_unconfirmed, parties};

/// Longest wait for the reactions to reach NATS.
const REACTIONS_WAIT: Duration = Duration::from_secs(60);

/// The buyer's client: its own trace, the W3C example.
const BUYER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const SHIPMENT_CLOSED: &str = "symbiose.logistics.v1.ShipmentClosed";
const PENDING_POSTED: &str = "symbiose.settlement.v1.PendingPosted";
const ESCROW_RELEASED: &str = "symbiose.settlement.v1.EscrowReleased";
const INVOICE_ISSUED: &str = "symbiose.settlement.v1.InvoiceIssued";
const DELIVERY_CONFIRMED: &str = "symbiose.listings.v1.DeliveryConfirmed";

/// An event as a partner sees it on NATS: its type and trace extensions.
#[derive(Debug, Clone)]
struct Seen {
    event_type: String,
    causation_id: String,
    traceparent: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_is_followed_to_its_invoice_by_its_correlation_id() {
    let Some(nats) =
        NatsServer::start_or_skip("an_acceptance_is_followed_to_its_invoice_by_its_correlation_id")
    else {
        return;
    };
    let partner = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let mut messages = partner.subscribe("symbiose.>").await.expect("subscribe");
    partner.flush().await.expect("flush");
    let server = TestServer::start_with(|config| config.nats_url = Some(nats.url())).await.expect("server");
    let (seller, buyer, carrier) = parties(&server).await;
    fixtures::deposit(&server, &buyer.organization_id, 50_000).await.expect("a deposit");
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    let shipment = deliver_unconfirmed(&server, &buyer, &carrier, &deal.deal_id, 38).await;

    let buyer_trace = TraceContext::from_traceparent(BUYER_TRACEPARENT).expect("valid");
    let correlation_id = buyer_trace.correlation_id();
    let mut acceptance = tonic::Request::new(logistics::ConfirmAcceptanceRequest {
        request_id: String::new(),
        shipment_id: shipment,
    });
    acceptance.metadata_mut().insert("traceparent", BUYER_TRACEPARENT.parse().expect("a header value"));
    let response = LogisticsServiceClient::new(server.authed(&buyer.token).await.expect("channel"))
        .confirm_acceptance(acceptance)
        .await
        .expect("accepted");
    let answered = response.metadata().get("traceparent").expect("a traceparent answered");
    let answered = TraceContext::from_traceparent(answered.to_str().expect("ascii")).expect("valid");
    assert_eq!(answered.trace_id, buyer_trace.trace_id, "the call continues the buyer's trace");

    // Every event of the action, by id, as it reaches a partner.
    let mut action: HashMap<String, Seen> = HashMap::new();
    let complete = |action: &HashMap<String, Seen>| {
        let count = |event_type: &str| action.values().filter(|seen| seen.event_type == event_type).count();
        count(SHIPMENT_CLOSED) == 1
            && count(PENDING_POSTED) >= 1
            && count(ESCROW_RELEASED) == 1
            && count(INVOICE_ISSUED) == 1
            && count(DELIVERY_CONFIRMED) == 2
    };
    let deadline = Instant::now() + REACTIONS_WAIT;
    while !complete(&action) {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, messages.next())
            .await
            .unwrap_or_else(|_| panic!("the action's events did not all reach NATS: {action:#?}"))
            .expect("the subscription is open");
        let Some(headers) = message.headers.as_ref() else { continue };
        let header =
            |name: &str| headers.get(name).map(|value| value.as_str().to_owned()).unwrap_or_default();
        if header("ce-correlationid") != correlation_id {
            continue;
        }
        let seen = Seen {
            event_type: header("ce-type"),
            causation_id: header("ce-causationid"),
            traceparent: header("ce-traceparent"),
        };
        action.insert(header("ce-id"), seen);
    }
    server.stop().await.expect("the server stops");

    let ids_of = |event_type: &str| -> Vec<String> {
        action.iter().filter(|(_, seen)| seen.event_type == event_type).map(|(id, _)| id.clone()).collect()
    };
    let closed = ids_of(SHIPMENT_CLOSED).pop().expect("the shipment closed");
    // A command's events name the call that carried it: the span id it answered with.
    let call = format!("{:016x}", answered.span_id);
    for (id, seen) in &action {
        let trace = TraceContext::from_traceparent(&seen.traceparent)
            .unwrap_or_else(|| panic!("{} {id} has a traceparent: {seen:?}", seen.event_type));
        assert_eq!(trace.trace_id, buyer_trace.trace_id, "{} {id} is of the buyer's trace", seen.event_type);
        if seen.causation_id == call {
            // Written by the acceptance itself: the shipment closed (and what the same command
            // wrote beside it).
            assert!(!seen.event_type.starts_with("symbiose.settlement."), "{seen:?} is a reaction");
        } else {
            assert!(
                action.contains_key(&seen.causation_id),
                "{} {id} is caused by an event of the action: {seen:?}",
                seen.event_type
            );
        }
    }
    assert_eq!(
        action[&closed].causation_id, call,
        "the acceptance is a command, caused by the call that answered {answered:?}"
    );
    // The settler reacts to the shipment closed; so does matching's deliverer, through listings.
    for event_type in [PENDING_POSTED, ESCROW_RELEASED, INVOICE_ISSUED, DELIVERY_CONFIRMED] {
        for id in ids_of(event_type) {
            assert_eq!(
                action[&id].causation_id, closed,
                "{event_type} {id} is caused by the shipment closed"
            );
        }
    }
}
