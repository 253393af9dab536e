"""A campaign's page: its settings, the compliance warnings and launch of a draft, every figure
of `campaign_metrics` with its definition (docs/campaign-metrics.md), charts, the leaderboard's
top 20, what the kind keeps (the lottery's commitment and seed, 拼团 teams, bargains, gifts),
and the forecast: made before launch, set beside what happened after it.

Everyone who may view reads it (an analyst sees names masked); owners and admins run the
forecast, award a leaderboard's prizes and mark 拼团 leaders (audited).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quanzi.analytics.params import iso
from quanzi.campaigns import bargain, forecast, group_buy, leaderboard, lottery, metrics
from quanzi.campaigns import service as campaigns
from quanzi.campaigns.models import Bargain, Campaign, CampaignTeam, Gift, Participant, Reward
from quanzi.campaigns.rules import reward_ids
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.pages.campaigns import (
    group_names,
    kind_labels,
    participant_labels,
    status_labels,
    warnings_of,
)
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]

TOP = 20
RECENT = 50  # teams / bargains listed
MAX_FORECAST_RUNS = 5000  # keeps a console request to a few seconds
DOCS = "docs/campaign-metrics.md"


# --- figures and their definitions ---------------------------------------------------------------


def figure_defs() -> list[tuple[str, str, str, str]]:
    """(figure, its name, how it is shown, its one-line definition), in the dashboard's order."""
    return [
        ("participants", gettext("Participants"), "num", gettext(
            "People who took part (members and phone-only), at any time.")),
        ("invites_raw", gettext("Invites (raw)"), "num", gettext(
            "Joins invited by a participant's member in the window, into the counted groups.")),
        ("invites_new", gettext("Invites of new members"), "num", gettext(
            "Of them, the invitee's first join into those groups.")),
        ("invites_valid", gettext("Valid invites"), "num", gettext(
            "New-member invites whose invitee stayed the hold window and is not flagged as "
            "fraud.")),
        ("invites_pending", gettext("Pending invites"), "num", gettext(
            "New-member invites still inside the hold window.")),
        ("converted", gettext("Invitees who took part"), "num", gettext(
            "Invitees of valid invites who became participants themselves.")),
        ("invites_per_participant", gettext("Valid invites per participant"), "ratio", gettext(
            "Valid invites ÷ participants.")),
        ("conversion", gettext("Conversion"), "pct", gettext(
            "Invitees who took part ÷ valid invites.")),
        ("k_factor", gettext("K-factor"), "ratio", gettext(
            "Valid invites per participant × conversion: new participants each one brought. "
            "Above 1 the campaign grows by itself.")),
        ("generations", gettext("Generations"), "num", gettext(
            "The longest chain of participants, each brought by the one before.")),
        ("cycle_time_hours", gettext("Cycle time (hours)"), "ratio", gettext(
            "Median time from a participant joining to someone they brought joining.")),
        ("acquired", gettext("Acquired members"), "num", gettext(
            "Invitees of valid invites who were new to the whole community.")),
        ("activated", gettext("Activated members"), "num", gettext(
            "Acquired members who posted within 7 days of their first join.")),
        ("reward_cost_fen", gettext("Reward cost"), "money", gettext(
            "Unit cost of every reward claim not revoked.")),
        ("campaign_cost_fen", gettext("Other cost"), "money", gettext(
            "The cost of the campaign's channel code.")),
        ("total_cost_fen", gettext("Total cost"), "money", gettext(
            "Reward cost + other cost.")),
        ("cost_per_acquired_fen", gettext("Cost per acquired member"), "money", gettext(
            "Total cost ÷ acquired members.")),
        ("cost_per_activated_fen", gettext("Cost per activated member"), "money", gettext(
            "Total cost ÷ activated members.")),
        ("orders", gettext("Attributed orders"), "num", gettext(
            "Orders carrying the campaign's key, or paid in the window with a participant as "
            "referrer; fully refunded ones left out.")),
        ("revenue_fen", gettext("Attributed revenue"), "money", gettext(
            "Those orders' amounts less their refunds.")),
        ("roi", gettext("ROI"), "ratio", gettext(
            "(Revenue − total cost) ÷ total cost. 7.0: every yuan came back eightfold.")),
    ]  # fmt: skip


def figure_rows(m: metrics.CampaignMetrics) -> list[dict[str, Any]]:
    values = m.as_dict()
    return [
        {"key": k, "label": label, "how": how, "value": values[k], "definition": d}
        for k, label, how, d in figure_defs()
    ]


def cohort_rows(m: metrics.CampaignMetrics) -> list[dict[str, Any]]:
    ours, other = m.campaign_cohort, m.other_cohort
    return [
        {"key": "members", "label": gettext("Members"), "how": "num",
         "ours": ours.members, "other": other.members},
        {"key": "activation_rate", "label": gettext("Activated within 7 days"), "how": "pct",
         "ours": ours.activation_rate, "other": other.activation_rate},
        {"key": "retention_7d", "label": gettext("7-day retention"), "how": "pct",
         "ours": ours.retention_7d, "other": other.retention_7d,
         "base": (ours.base_7d, other.base_7d)},
        {"key": "retention_30d", "label": gettext("30-day retention"), "how": "pct",
         "ours": ours.retention_30d, "other": other.retention_30d,
         "base": (ours.base_30d, other.base_30d)},
    ]  # fmt: skip


# --- charts --------------------------------------------------------------------------------------


def daily_chart(s: Session, c: Campaign, m: metrics.CampaignMetrics) -> dict[str, Any] | None:
    """Participants who joined and invites (raw, valid) per local day of the window so far."""
    cal = metrics.calendar(s, c.workspace_id)
    last_us = min(c.ends_at_us, max(c.starts_at_us + 1, now_us())) - 1
    first, last = cal.day_of(c.starts_at_us), cal.day_of(last_us)
    if last < first or last - first > 400:
        return None
    joined = Counter(
        cal.day_of(int(t))
        for t in s.scalars(select(Participant.joined_at_us).where(Participant.campaign_id == c.id))
    )
    hold = m.hold_hours * 3_600_000_000
    raw: Counter[int] = Counter()
    valid: Counter[int] = Counter()
    for f in metrics.campaign_invites(s, c, cal):
        raw[cal.day_of(f.joined_us)] += 1
        if f.valid(hold, m.as_of_us):
            valid[cal.day_of(f.joined_us)] += 1
    days = list(range(first, last + 1))
    x = [iso(d) for d in days]
    return {
        "data": [
            {"type": "bar", "name": gettext("Participants"), "x": x, "y": [joined[d] for d in days]},
            {"type": "scatter", "mode": "lines+markers", "name": gettext("Invites (raw)"),
             "x": x, "y": [raw[d] for d in days]},
            {"type": "scatter", "mode": "lines+markers", "name": gettext("Valid invites"),
             "x": x, "y": [valid[d] for d in days]},
        ],
    }  # fmt: skip


def retention_chart(m: metrics.CampaignMetrics) -> dict[str, Any]:
    x = [
        gettext("Activated within 7 days"),
        gettext("7-day retention"),
        gettext("30-day retention"),
    ]

    def bars(name: str, cohort: metrics.Cohort, color: str) -> dict[str, Any]:
        y = [cohort.activation_rate, cohort.retention_7d, cohort.retention_30d]
        return {"type": "bar", "name": name, "x": x, "y": y, "marker": {"color": color}}

    return {
        "data": [
            bars(gettext("Brought in by this campaign"), m.campaign_cohort, "#0b5cad"),
            bars(gettext("Other new members in the window"), m.other_cohort, "#98a2b3"),
        ],
        "layout": {"barmode": "group", "yaxis": {"tickformat": ".0%", "rangemode": "tozero"}},
    }


def money_chart(m: metrics.CampaignMetrics) -> dict[str, Any]:
    x = [gettext("Reward cost"), gettext("Other cost"), gettext("Attributed revenue")]
    y = [m.reward_cost_fen / 100, m.campaign_cost_fen / 100, m.revenue_fen / 100]
    colors = ["#b42318", "#f79009", "#067647"]
    return {
        "data": [{"type": "bar", "x": x, "y": y, "marker": {"color": colors}, "name": "¥"}],
        "layout": {"showlegend": False},
    }


# --- what the kind keeps -------------------------------------------------------------------------


def settings_rows(s: Session, p: Principal, c: Campaign) -> list[tuple[str, str]]:
    """The campaign's rules, as lines to read."""
    r = c.rules or {}
    names = {
        int(rid): str(name)
        for rid, name in s.execute(
            select(Reward.id, Reward.name).where(
                Reward.workspace_id == c.workspace_id, Reward.id.in_(reward_ids(r) or [0])
            )
        )
    }

    def reward(rid: Any) -> str:
        return names.get(int(rid), f"#{rid}") if rid else "—"

    def money(fen: Any) -> str:
        return f"¥{int(fen) / 100:,.2f}"

    elig = r.get("eligibility") or {}
    who = [gettext("New members only")] if elig.get("new_only") else []
    if elig.get("tag_ids"):
        who.append(gettext("Tags: %(n)s") % {"n": len(elig["tag_ids"])})
    if elig.get("channels"):
        who.append(", ".join(elig["channels"]))
    shown, hidden = group_names(s, p, [int(g) for g in r.get("group_ids") or []])
    groups = ", ".join(shown) or (gettext("Every group") if not hidden else "")
    if hidden:
        groups += (", " if shown else "") + gettext("and %(n)s groups outside yours") % {
            "n": hidden
        }
    rows = [
        (gettext("Who may take part"), " · ".join(who) or gettext("Anyone")),
        (gettext("Counted groups"), groups),
        (gettext("Hold window (hours)"), str(r.get("hold_hours", 72))),
        (gettext("Rewards per person (cap)"), str(r.get("per_person_cap") or "—")),
        (gettext("Participants (cap)"), str(r.get("campaign_cap") or "—")),
    ]
    for t in r.get("tiers") or []:
        rows.append(
            (gettext("At %(n)s valid invites") % {"n": t["invites"]}, reward(t["reward_id"]))
        )
    if "team" in r:
        t = r["team"]
        rows.append(
            (
                gettext("Team"),
                gettext("Teams of %(size)s within %(hours)s hours: %(group)s instead of %(price)s")
                % {
                    "size": t["size"],
                    "hours": t["limit_hours"],
                    "group": money(t["group_price_fen"]),
                    "price": money(t["price_fen"]),
                },
            )
        )
        if t.get("leader_only"):
            rows.append((gettext("Only leaders open teams"), gettext("Yes")))
    if "help" in r:
        rows.append(
            (gettext("Unlocked by %(n)s helpers") % {"n": r["help"]["helpers_needed"]},
             reward(r["help"]["reward_id"]))
        )  # fmt: skip
    if "bargain" in r:
        bg = r["bargain"]
        rows.append(
            (
                gettext("Bargain"),
                gettext("From %(price)s down to %(floor)s in %(n)s cuts within %(hours)s hours")
                % {
                    "price": money(bg["price_fen"]),
                    "floor": money(bg["floor_fen"]),
                    "n": bg["helpers"],
                    "hours": bg["hours"],
                },
            )
        )
        if bg.get("reward_id"):
            rows.append((gettext("Reward at the floor (optional)"), reward(bg["reward_id"])))
    if "gift" in r:
        g = r["gift"]
        rows.append((gettext("Sender's reward"), reward(g["sender_reward_id"])))
        rows.append((gettext("Friend's reward"), reward(g["friend_reward_id"])))
        rows.append((gettext("Gifts per sender"), str(g["max_gifts"])))
    if "board" in r:
        metric = r["board"].get("metric", "valid_invites")
        rows.append(
            (gettext("Rank by"), gettext("Valid invites") if metric == "valid_invites" else
             gettext("Points"))
        )  # fmt: skip
        for prize in r["board"].get("prizes") or []:
            ranks = f"{prize['rank_from']}–{prize['rank_to']}"
            rows.append((gettext("Ranks %(ranks)s") % {"ranks": ranks}, reward(prize["reward_id"])))
    if "lottery" in r:
        lt = r["lottery"]
        rows.append((gettext("Winners"), str(lt["winners"])))
        rows.append((gettext("Reward"), reward(lt["reward_id"])))
    return rows


def published_list(s: Session, p: Principal, c: Campaign) -> lottery.PublishedList:
    """The draw's published list as `lottery.published_list` makes it (entrants by id, masked
    names, the commitment, the seed once drawn). The names are masked here: the engine's own
    lookup hands a SQLAlchemy 2.1 Result to dict.update, which takes it for a mapping and
    fails as soon as a member takes part."""
    settings = c.rules["lottery"]
    people = lottery.entrants(s, c)
    names = participant_labels(s, p, people, masked=True)
    return lottery.PublishedList(
        campaign=c.key,
        commitment=c.draw_commitment,
        seed=c.draw_seed if c.drawn_at_us is not None else None,
        draw_at_us=int(settings["draw_at_us"]),
        drawn_at_us=c.drawn_at_us,
        winners=int(settings["winners"]),
        entries=[lottery.PublishedEntry(x.id, names[x.id]) for x in people],
    )


def _lottery(s: Session, p: Principal, c: Campaign) -> dict[str, Any]:
    published = published_list(s, p, c)
    won = lottery.winner_ids(s, c)
    people = [x for x in (s.get(Participant, pid) for pid in won) if x is not None]
    names = participant_labels(s, p, people)
    return {
        "commitment": c.draw_commitment,
        "seed": published.seed,
        "draw_at_us": published.draw_at_us,
        "drawn_at_us": c.drawn_at_us,
        "entrants": len(published.entries),
        "winners": [(rank, pid, names.get(pid, f"#{pid}")) for rank, pid in enumerate(won, 1)],
    }


def _teams(s: Session, p: Principal, c: Campaign) -> dict[str, Any]:
    counts = {
        str(status): int(n)
        for status, n in s.execute(
            select(CampaignTeam.status, func.count())
            .where(CampaignTeam.campaign_id == c.id)
            .group_by(CampaignTeam.status)
        )
    }
    teams = list(
        s.scalars(
            select(CampaignTeam)
            .where(CampaignTeam.campaign_id == c.id)
            .order_by(CampaignTeam.opened_at_us.desc(), CampaignTeam.id.desc())
            .limit(RECENT)
        )
    )
    leaders = [x for x in (s.get(Participant, t.leader_id) for t in teams) if x is not None]
    names = participant_labels(s, p, leaders)
    return {
        "counts": {k: int(counts.get(k, 0)) for k in ("open", "complete", "expired")},
        "rows": [(t, names.get(t.leader_id, f"#{t.leader_id}")) for t in teams],
    }


def _bargains(s: Session, p: Principal, c: Campaign) -> dict[str, Any]:
    found = list(
        s.scalars(
            select(Bargain)
            .where(Bargain.campaign_id == c.id)
            .order_by(Bargain.started_at_us.desc(), Bargain.id.desc())
        )
    )
    now = now_us()

    def state(b: Bargain) -> str:
        if b.completed_at_us is not None:
            return "completed"
        return "expired" if bargain.deadline_of(c, b) <= now else "in_progress"

    states = [state(b) for b in found]
    shown = found[:RECENT]
    people = [x for x in (s.get(Participant, b.participant_id) for b in shown) if x is not None]
    names = participant_labels(s, p, people)
    return {
        "counts": {k: states.count(k) for k in ("in_progress", "completed", "expired")},
        "rows": [
            (b, st, names.get(b.participant_id, f"#{b.participant_id}"))
            for b, st in zip(shown, states, strict=False)
        ],
    }


def _gifts(s: Session, c: Campaign) -> dict[str, int]:
    counts = {
        str(status): int(n)
        for status, n in s.execute(
            select(Gift.status, func.count()).where(Gift.campaign_id == c.id).group_by(Gift.status)
        )
    }
    return {k: int(counts.get(k, 0)) for k in ("sent", "accepted", "redeemed", "expired")}


def _board(s: Session, p: Principal, c: Campaign) -> list[tuple[int, int, str, int]]:
    ranked = leaderboard.top(s, c, TOP)
    people = [x for x in (s.get(Participant, r.participant_id) for r in ranked) if x is not None]
    names = participant_labels(s, p, people)
    return [
        (r.rank, r.participant_id, names.get(r.participant_id, f"#{r.participant_id}"), r.score)
        for r in ranked
    ]


# --- the page ------------------------------------------------------------------------------------


def _flash(done: str) -> list[tuple[str, str]]:
    texts = {
        "created": gettext("Campaign saved as a draft. Check the warnings, then launch it."),
        "saved": gettext("Campaign saved."),
        "launched": gettext("Campaign launched."),
        "ended": gettext("Campaign ended: nobody joins any more; what was earned stays."),
        "cancelled": gettext("Campaign cancelled."),
        "forecast": gettext("Forecast made."),
        "awarded": gettext("Prizes awarded to the ranks of the leaderboard."),
        "leader": gettext("Participant marked as a team leader."),
    }
    return [("ok", texts[done])] if done in texts else []


def dashboard(
    campaign_id: int,
    p: Principal,
    *,
    done: str = "",
    error: str | None = None,
    forecast_error: str | None = None,
    forecast_form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with p.read() as s:
        c = campaigns.get_campaign(s, p.ws.id, campaign_id)
        m = metrics.campaign_metrics(s, p.ws.id, c.id)
        vs = None
        if c.forecast and c.status in ("live", "ended"):
            vs = forecast.forecast_vs_actual(s, p.ws.id, c.id, m.as_of_us)["rows"]
        ctx: dict[str, Any] = {
            "active": "campaigns",
            "charts": True,
            "c": c,
            "kinds": kind_labels(),
            "statuses": status_labels(),
            "settings": settings_rows(s, p, c),
            "warnings": warnings_of(c.kind, c.rules, c.copy_text),
            "m": m,
            "figures": figure_rows(m),
            "cohorts": cohort_rows(m),
            "docs": DOCS,
            "daily": daily_chart(s, c, m),
            "retention": retention_chart(m),
            "money": money_chart(m),
            "board": _board(s, p, c),
            "lottery": _lottery(s, p, c) if c.kind == "lottery" else None,
            "teams": _teams(s, p, c) if c.kind == "group_buy" else None,
            "bargains": _bargains(s, p, c) if c.kind == "bargain" else None,
            "gifts": _gifts(s, c) if c.kind == "gift_coupon" else None,
            "forecast": c.forecast,
            "vs": vs,
            "forecast_error": forecast_error,
            "fv": forecast_form or {"seeds": "100", "runs": "2000"},
            "may_edit": p.may(Perm.MANAGE_TEAM),
            "flashes": _flash(done) + ([("error", error)] if error else []),
        }
        return render(
            p.request, "campaigns/dashboard.html", ctx, principal=p, status_code=status_code
        )


@router.get("/w/{workspace}/campaigns/{campaign_id:int}")
def campaign_page(
    campaign_id: int, p: Viewer, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    return dashboard(campaign_id, p, done=done)


def _exists(p: Principal, campaign_id: int) -> None:
    """NotFound (404) for a campaign of another workspace, before any form is judged."""
    with p.read() as s:
        campaigns.get_campaign(s, p.ws.id, campaign_id)


def _whole(text: str, where: str, lo: int, hi: int) -> int:
    clean = (text or "").strip()
    if not clean.isdigit() or not lo <= int(clean) <= hi:
        raise InvalidParameter(f"{where}: give a whole number from {lo} to {hi}")
    return int(clean)


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/forecast")
def run_forecast(
    campaign_id: int,
    p: Manager,
    seeds: Annotated[str, Form(max_length=12)] = "",
    runs: Annotated[str, Form(max_length=12)] = "2000",
) -> Response:
    """Simulate a draft's reach and reward cost from the workspace's own invite history and keep
    it on the campaign (a live one keeps the forecast it launched with, to compare)."""
    _exists(p, campaign_id)
    try:
        n_seeds = _whole(seeds, "seeds", 1, 1_000_000)
        n_runs = _whole(runs, "runs", 1, MAX_FORECAST_RUNS)
        with p.write() as s:
            c = campaigns.get_campaign(s, p.ws.id, campaign_id)
            if c.status != "draft":
                raise InvalidParameter(
                    f"status: a forecast is made before launch (this campaign is {c.status})"
                )
            made = forecast.forecast_campaign(s, p.ws.id, campaign_id, n_seeds, n_runs)
            p.audit(
                s,
                "campaign.forecast",
                target=c.key,
                detail={"seeds": n_seeds, "runs": n_runs, "participants": made["participants"]},
            )
    except QuanziError as exc:
        return dashboard(
            campaign_id,
            p,
            forecast_error=translate_error(str(exc)),
            forecast_form={"seeds": seeds, "runs": runs},
            status_code=exc.status_code,
        )
    return RedirectResponse(
        p.url(f"/campaigns/{campaign_id}?done=forecast#forecast"), status_code=303
    )


@router.get("/w/{workspace}/campaigns/{campaign_id:int}/draw-list")
def draw_list(
    campaign_id: int, p: Viewer, format: Annotated[str, Query(max_length=4)] = "json"
) -> Response:
    """The lottery's published list (masked names, the commitment, the seed after the draw):
    what `quanzi campaign verify-draw` checks the winners with."""
    if format not in ("json", "csv"):
        raise InvalidParameter(f"format must be json or csv, not {format!r}")
    with p.read() as s:
        c = campaigns.get_campaign(s, p.ws.id, campaign_id)
        if c.kind != "lottery":
            raise NotFound(f"campaign {campaign_id} is not a lottery")
        published = published_list(s, p, c)
    if format == "csv":
        body, media = published.as_csv(), "text/csv; charset=utf-8"
    else:
        body, media = published.as_json(), "application/json"
    return Response(
        body.encode("utf-8"),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="draw-{c.key}.{format}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/award")
def award(campaign_id: int, p: Manager) -> Response:
    """Give a leaderboard's prizes to the ranks they name (once; running it again gives
    nothing twice)."""
    _exists(p, campaign_id)
    try:
        with p.write() as s:
            c = campaigns.get_campaign(s, p.ws.id, campaign_id)
            if c.kind != "leaderboard" or c.status != "ended":
                raise InvalidParameter("status: prizes are awarded when a leaderboard has ended")
            claims = leaderboard.award_prizes(s, c, by=p.user.email)
            p.audit(s, "campaign.awarded", target=c.key, detail={"claims": len(claims)})
    except QuanziError as exc:
        return dashboard(campaign_id, p, error=translate_error(str(exc)), status_code=400)
    return RedirectResponse(p.url(f"/campaigns/{campaign_id}?done=awarded"), status_code=303)


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/leader")
def mark_leader(
    campaign_id: int,
    p: Manager,
    participant_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Let a participant of a leaders-only 拼团 open teams (团长)."""
    _exists(p, campaign_id)
    try:
        with p.write() as s:
            c = campaigns.get_campaign(s, p.ws.id, campaign_id)
            if not participant_id.strip().isdigit():
                raise InvalidParameter("participant_id: give a participant number")
            who = campaigns.get_participant(s, c, int(participant_id))
            group_buy.mark_leader(s, c, who, p.user.email)
            p.audit(s, "campaign.leader", target=c.key, detail={"participant": who.id})
    except QuanziError as exc:
        return dashboard(campaign_id, p, error=translate_error(str(exc)), status_code=400)
    return RedirectResponse(p.url(f"/campaigns/{campaign_id}?done=leader"), status_code=303)
