//! What every report shares: refused requests with what to do, the JSON, partial views.

use super::*;

#[test]
fn bad_requests_are_refused_with_what_to_do() {
    let (_d, r) = clinic();
    let err = |req: &Request| run(r.conn(), req).unwrap_err().to_string();
    let backwards = err(&request(Kind::Calls, "2026-03-11", "2026-03-10"));
    assert!(backwards.contains("--to 2026-03-10 is before --from 2026-03-11"), "{backwards}");
    let far = err(&request(Kind::Calls, "9999-12-01", "9999-12-31"));
    assert!(far.contains("9999-12-01 is outside the years"), "{far}");
    let long = err(&request(Kind::Calls, "2000-01-01", "2026-01-01"));
    assert!(long.contains("at most 3660 days"), "{long}");
    let mut req = period(Kind::Calls);
    req.by = Some(Breakdown::Reason);
    let unfit = err(&req);
    assert!(unfit.contains("calls report cannot be broken down by reason"), "{unfit}");
    assert!(unfit.contains("day, week, month, operator, channel, campaign"), "{unfit}");
    req.kind = Kind::Operators;
    req.by = Some(Breakdown::Day);
    assert!(err(&req).contains("use --by operator"));
    let mut req = period(Kind::Calls);
    req.filters.reason = Some("Booking".into());
    let filter = err(&req);
    assert!(filter.contains("has no --reason filter") && filter.contains("--operator, --channel"), "{filter}");
    let mut req = period(Kind::Calls);
    req.filters.operator = Some("zed".into());
    let who = err(&req);
    assert!(who.contains("no user \"zed\"") && who.contains("ann, bob, doc"), "{who}");
    let mut req = period(Kind::Marketing);
    req.filters.campaign = Some("Old".into());
    assert!(err(&req).contains("no campaign \"Old\""), "a deleted campaign is not there");
    assert!(Kind::from_name("sales").is_none());
    assert_eq!(Kind::from_name(" Calls "), Some(Kind::Calls));
    assert!(ReportError::UnknownKind("sales".into()).to_string().contains("inquiries, funnel, speed"));
}

#[test]
fn the_json_has_rows_a_total_the_previous_period_and_deltas() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Calls));
    let json = rep.to_json(true);
    assert_eq!(json["kind"], "calls");
    assert_eq!(json["from"], "2026-03-10");
    assert_eq!(json["to"], "2026-03-11");
    assert_eq!(json["tz"], "UTC");
    assert_eq!(json["partial_view"], true);
    assert_eq!(json["rows"][0]["key"], "2026-03-10");
    assert_eq!(json["rows"][0]["inbound"], 4);
    assert_eq!(json["total"]["missed_rate"], 0.5556);
    assert_eq!(json["total"]["previous"]["inbound"], 2);
    assert_eq!(json["total"]["delta"]["avg_answer_s"], -20.0);
    assert_eq!(json["previous_period"]["from"], "2026-03-08");
}

#[test]
fn a_view_is_partial_without_the_rights_to_every_row() {
    let operator = RoleCode::Operator.default_rights();
    let supervisor = RoleCode::Supervisor.default_rights();
    let head = RoleCode::Head.default_rights();
    // Operators get their own calls and the missed-call queue only.
    assert!(partial_view(Kind::Calls, &operator));
    assert!(partial_view(Kind::Missed, &operator));
    assert!(partial_view(Kind::Operators, &operator));
    // They see every inquiry and deal.
    assert!(!partial_view(Kind::Inquiries, &operator));
    assert!(!partial_view(Kind::Funnel, &operator));
    for kind in Kind::ALL {
        assert!(!partial_view(*kind, &supervisor), "{kind}");
        assert!(!partial_view(*kind, &head), "{kind}");
    }
    // A nurse sees no inquiries.
    assert!(partial_view(Kind::Speed, &RoleCode::Nurse.default_rights()));
}
