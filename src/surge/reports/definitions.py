"""What every figure of the daily report means: its labels, its unit and how it is counted.

One catalogue feeds the JSON report's metadata, the CSV and XLSX column headers, and
docs/REPORT.md (a test keeps the document and the catalogue in step). Each figure names the
SQL columns it is computed from; tests check that every one is selected under that label and that
every figure is a field of its part's schema (docs/REPORT.md: adding a figure).

Every figure counts the calls *received* in the report's day (local midnight to midnight): a call
that arrives at 23:59:50 and is answered at 00:00:10 belongs to the day it arrived, hour 23.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """How a figure is measured."""

    CALLS = "calls"
    CALLERS = "callers"
    COUNT = "count"  # things that are not calls (knowledge gaps)
    SHARE = "share"
    SECONDS = "seconds"
    HOURS = "hours"
    AGENTS = "agents"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure of the report: its key (the schema's field, the export's column), its labels,
    unit and definition, and the labelled SQL columns it is computed from (`reports.service`
    selects and reads every column by that name; `seats` and `name` are the city's own)."""

    key: str
    zh: str
    en: str
    unit: Unit
    definition: str
    columns: tuple[str, ...]


def _catalogue(*metrics: Metric) -> dict[str, Metric]:
    return {metric.key: metric for metric in metrics}


CITY = _catalogue(
    Metric(
        "code",
        "城市代码",
        "City code",
        Unit.TEXT,
        "6-digit administrative code; `province` for the province total (null in JSON).",
        columns=("code",),
    ),
    Metric("name", "城市", "City", Unit.TEXT, "The city's name.", columns=("name",)),
    Metric(
        "received",
        "呼入量",
        "Received",
        Unit.CALLS,
        "Calls received in the day.",
        columns=("received",),
    ),
    Metric(
        "answered",
        "接通量",
        "Answered",
        Unit.CALLS,
        "Received calls connected to an agent (own city's or a helper's).",
        columns=("answered",),
    ),
    Metric(
        "abandoned",
        "放弃量",
        "Abandoned",
        Unit.CALLS,
        "Received calls whose caller hung up while queued or offered (and were not called back since: a callback counts as one; a callback withdrawn because its caller called again counts here).",
        columns=("abandoned",),
    ),
    Metric(
        "abandoned_short",
        "短时放弃量",
        "Abandoned within threshold",
        Unit.CALLS,
        "Abandoned calls that waited less than the short-abandon threshold (5 s by default).",
        columns=("abandoned_short",),
    ),
    Metric(
        "abandoned_long",
        "超时放弃量",
        "Abandoned after threshold",
        Unit.CALLS,
        "Abandoned calls that waited the short-abandon threshold or longer.",
        columns=("abandoned", "abandoned_short"),
    ),
    Metric(
        "open",
        "未结束量",
        "Still waiting",
        Unit.CALLS,
        "Received calls still queued, offered or being called back when the report was made (received = answered + abandoned + callbacks unreached + still waiting).",
        columns=("received", "answered", "abandoned", "callbacks_unreached"),
    ),
    Metric(
        "unique_callers",
        "来电人数",
        "Unique callers",
        Unit.CALLERS,
        "Distinct caller numbers among the calls received, told apart by the day's salted hash of the number (never the number); the province counts a number that called two cities once.",
        columns=("unique_callers",),
    ),
    Metric(
        "repeat_attempts",
        "重复呼入量",
        "Repeat attempts",
        Unit.CALLS,
        "Received calls from a number already seen that day: received − unique_callers.",
        columns=("received", "unique_callers"),
    ),
    Metric(
        "connection_rate",
        "接通率",
        "Connection rate",
        Unit.SHARE,
        "answered ÷ received; empty when nothing was received.",
        columns=("answered", "received"),
    ),
    Metric(
        "abandonment_rate",
        "放弃率",
        "Abandonment rate",
        Unit.SHARE,
        "abandoned ÷ received.",
        columns=("abandoned", "received"),
    ),
    Metric(
        "asa_s",
        "平均等待时长",
        "Average speed of answer",
        Unit.SECONDS,
        "Mean queue wait (received to connected) of the answered calls.",
        columns=("wait_s", "answered"),
    ),
    Metric(
        "wait_p90_s",
        "90%等待时长",
        "90th-percentile wait",
        Unit.SECONDS,
        "Nearest-rank 90th percentile of the answered calls' waits: the smallest wait that at least 90% of answered calls did not exceed.",
        columns=("wait_p90_s",),
    ),
    Metric(
        "service_level",
        "服务水平",
        "Service level",
        Unit.SHARE,
        "Answered within T s (20 s by default) ÷ (answered + abandoned after the short threshold).",
        columns=("answered_in_time", "answered", "abandoned", "abandoned_short"),
    ),
    Metric(
        "aht_s",
        "平均处理时长",
        "Average handling time",
        Unit.SECONDS,
        "Mean of connected to the end of the wrap-up (talk, ticket and wrap-up; to the ticket"
        " without a wrap-up) over the completed calls.",
        columns=("handling_s", "completed"),
    ),
    Metric(
        "answered_by_helpers",
        "援助城市接通量",
        "Answered by helper cities",
        Unit.CALLS,
        "Answered calls taken by an agent whose home city is not the call's city (cloud seats).",
        columns=("answered_by_helpers",),
    ),
    Metric(
        "helper_share",
        "援助接通占比",
        "Helper share",
        Unit.SHARE,
        "answered_by_helpers ÷ answered.",
        columns=("answered_by_helpers", "answered"),
    ),
    Metric(
        "answered_for_others",
        "支援他市接通量",
        "Answered for other cities",
        Unit.CALLS,
        "Calls of other cities, received in the day, answered by this city's agents.",
        columns=("helper_answered",),
    ),
    Metric(
        "answered_online",
        "直接答复量",
        "Answered online",
        Unit.CALLS,
        "Completed calls with the disposition answered (resolved on the call).",
        columns=("answered_online",),
    ),
    Metric(
        "transferred",
        "转办量",
        "Transferred",
        Unit.CALLS,
        "Completed calls with the disposition transferred (handed to the responsible office).",
        columns=("transferred",),
    ),
    Metric(
        "online_rate",
        "直接答复率",
        "Online answer rate",
        Unit.SHARE,
        "answered_online ÷ completed calls.",
        columns=("answered_online", "completed"),
    ),
    Metric(
        "consultation",
        "咨询类",
        "Consultations",
        Unit.CALLS,
        "Completed calls whose category is a consultation (by the classification's level-2 code).",
        columns=("category", "kind_completed"),
    ),
    Metric(
        "consultation_aht_s",
        "咨询类平均处理时长",
        "Consultation AHT",
        Unit.SECONDS,
        "Average handling time of the consultations.",
        columns=("category", "kind_handling_s", "kind_completed"),
    ),
    Metric(
        "other",
        "非咨询类",
        "Other requests",
        Unit.CALLS,
        "Completed calls whose category is not a consultation (complaints, help requests, suggestions...).",
        columns=("category", "kind_completed"),
    ),
    Metric(
        "other_aht_s",
        "非咨询类平均处理时长",
        "Other AHT",
        Unit.SECONDS,
        "Average handling time of the other requests.",
        columns=("category", "kind_handling_s", "kind_completed"),
    ),
    Metric(
        "unclassified",
        "未分类",
        "Unclassified",
        Unit.CALLS,
        "Completed calls with no category code, or one the classification does not know.",
        columns=("category", "kind_completed"),
    ),
    Metric(
        "feedback",
        "回访量",
        "Follow-ups answered",
        Unit.CALLS,
        "Answered calls whose satisfaction follow-up (回访) got an answer.",
        columns=("feedback",),
    ),
    Metric(
        "satisfied",
        "满意量",
        "Satisfied",
        Unit.CALLS,
        "Follow-ups answered satisfied (yes, or a score of 4 or 5).",
        columns=("satisfied",),
    ),
    Metric(
        "satisfaction_rate",
        "满意率",
        "Satisfaction rate",
        Unit.SHARE,
        "satisfied ÷ follow-ups answered.",
        columns=("satisfied", "feedback"),
    ),
    Metric(
        "callbacks",
        "回拨请求量",
        "Callbacks requested",
        Unit.CALLS,
        "Received calls that became callbacks (回拨): asked for by the telephony, or made by themselves from an abandoned call.",
        columns=("callbacks",),
    ),
    Metric(
        "callbacks_reached",
        "回拨接通量",
        "Callbacks reached",
        Unit.CALLS,
        "Callbacks whose caller was reached and connected to an agent (they count among the answered calls too).",
        columns=("callbacks_reached",),
    ),
    Metric(
        "callbacks_unreached",
        "回拨未接通量",
        "Callbacks unreached",
        Unit.CALLS,
        "Callbacks whose last dial-out (SURGE_CALLBACK_ATTEMPTS, 3 by default) did not reach the caller.",
        columns=("callbacks_unreached",),
    ),
    Metric(
        "callback_wait_s",
        "回拨平均等待时长",
        "Average callback wait",
        Unit.SECONDS,
        "Mean time from the callback's request to the caller reached, over the callbacks reached.",
        columns=("callback_wait_s", "callbacks_reached"),
    ),
    Metric(
        "stale_tickets",
        "口径过期工单量",
        "Stale tickets",
        Unit.CALLS,
        "Completed calls whose ticket cited, or was answered under, a script version older than the one current for the city when it was completed (script_version or script_version_at_accept below script_version_at_complete).",
        columns=("stale_tickets",),
    ),
    Metric(
        "agents_active",
        "在岗坐席数",
        "Agents active",
        Unit.AGENTS,
        "This city's agents who answered at least one call received in the day (their own city's or another's).",
        columns=("agents_active", "agents_in_all"),
    ),
    Metric(
        "seats_active",
        "服务坐席数",
        "Seats serving",
        Unit.AGENTS,
        "Agents of any city (local agents and cloud seats) who answered at least one of this city's calls.",
        columns=("seats_active", "agents_in_all"),
    ),
    Metric(
        "seats",
        "编制坐席数",
        "Staffed seats",
        Unit.AGENTS,
        "The city's own staffing as configured (cities.json).",
        columns=("seats",),
    ),
    Metric(
        "gaps_raised",
        "口径缺口反馈量",
        "Knowledge gaps raised",
        Unit.COUNT,
        "Knowledge gaps (questions the answer scripts did not cover) agents raised in the day on the city's calls, by any city's agents (counted by the day they were raised, not the call's).",
        columns=("gaps_raised",),
    ),
    Metric(
        "gaps_raised_for_others",
        "为他市反馈口径缺口量",
        "Gaps raised for other cities",
        Unit.COUNT,
        "Knowledge gaps this city's agents raised in the day on other cities' calls (as helpers).",
        columns=("gaps_raised", "helper"),
    ),
    Metric(
        "gaps_closed",
        "口径缺口答复量",
        "Knowledge gaps closed",
        Unit.COUNT,
        "Knowledge gaps of the city whose group a publish of its scripts answered in the day (answers_gaps), whenever they were raised.",
        columns=("gaps_closed",),
    ),
)

HELPER = _catalogue(
    Metric(
        "host",
        "求助城市代码",
        "Host city code",
        Unit.TEXT,
        "The city whose calls were answered.",
        columns=("host",),
    ),
    Metric(
        "host_name",
        "求助城市",
        "Host city",
        Unit.TEXT,
        "The host city's name.",
        columns=("host", "name"),
    ),
    Metric(
        "code",
        "援助城市代码",
        "Helper city code",
        Unit.TEXT,
        "The helper city.",
        columns=("helper",),
    ),
    Metric(
        "name",
        "援助城市",
        "Helper city",
        Unit.TEXT,
        "The helper city's name.",
        columns=("helper", "name"),
    ),
    Metric(
        "answered",
        "接通量",
        "Answered",
        Unit.CALLS,
        "The host's calls answered by the helper's agents.",
        columns=("helper_answered",),
    ),
    Metric(
        "share",
        "占求助城市接通比例",
        "Share of host's answered",
        Unit.SHARE,
        "answered ÷ the host's answered calls.",
        columns=("helper_answered", "answered"),
    ),
    Metric(
        "asa_s",
        "平均等待时长",
        "Average speed of answer",
        Unit.SECONDS,
        "Mean wait of the calls the helper answered.",
        columns=("helper_wait_s", "helper_answered"),
    ),
    Metric(
        "aht_s",
        "平均处理时长",
        "Average handling time",
        Unit.SECONDS,
        "Mean handling time of the calls the helper completed.",
        columns=("helper_handling_s", "helper_completed"),
    ),
    Metric(
        "handling_hours",
        "处理时长(小时)",
        "Handling hours",
        Unit.HOURS,
        "Total handling time the helper gave, in hours.",
        columns=("helper_handling_s",),
    ),
    Metric(
        "agents",
        "援助坐席数",
        "Agents",
        Unit.AGENTS,
        "The helper's agents who answered at least one of the host's calls.",
        columns=("helper_agents",),
    ),
    Metric(
        "stale_tickets",
        "口径过期工单量",
        "Stale tickets",
        Unit.CALLS,
        "The host's stale tickets (see the summary's stale_tickets) answered by the helper's agents.",
        columns=("helper_stale",),
    ),
    Metric(
        "surges",
        "参与的多援一",
        "Surges",
        Unit.TEXT,
        "Surges for this host, active in the day, with the helper in an activated wave.",
        columns=("surge_id",),
    ),
    Metric(
        "gaps_raised",
        "反馈口径缺口量",
        "Knowledge gaps raised",
        Unit.COUNT,
        "Knowledge gaps the helper's agents raised in the day on the host's calls.",
        columns=("gaps_raised",),
    ),
)

HOURLY = _catalogue(
    Metric(
        "code",
        "城市代码",
        "City code",
        Unit.TEXT,
        "The city; `province` for the province total (null in JSON).",
        columns=("code",),
    ),
    Metric(
        "hour",
        "时段",
        "Hour",
        Unit.TEXT,
        "Local start of the hour the calls were received in.",
        columns=("hour",),
    ),
    Metric(
        "received",
        "呼入量",
        "Received",
        Unit.CALLS,
        "As the day's figure, for calls received in the hour.",
        columns=("received",),
    ),
    Metric(
        "answered", "接通量", "Answered", Unit.CALLS, "As the day's figure.", columns=("answered",)
    ),
    Metric(
        "abandoned",
        "放弃量",
        "Abandoned",
        Unit.CALLS,
        "As the day's figure.",
        columns=("abandoned",),
    ),
    Metric(
        "answered_by_helpers",
        "援助城市接通量",
        "Answered by helpers",
        Unit.CALLS,
        "As the day's figure.",
        columns=("answered_by_helpers",),
    ),
    Metric(
        "connection_rate",
        "接通率",
        "Connection rate",
        Unit.SHARE,
        "As the day's figure.",
        columns=("answered", "received"),
    ),
    Metric(
        "asa_s",
        "平均等待时长",
        "Average speed of answer",
        Unit.SECONDS,
        "As the day's figure.",
        columns=("wait_s", "answered"),
    ),
    Metric(
        "service_level",
        "服务水平",
        "Service level",
        Unit.SHARE,
        "As the day's figure.",
        columns=("answered_in_time", "answered", "abandoned", "abandoned_short"),
    ),
    Metric(
        "aht_s",
        "平均处理时长",
        "Average handling time",
        Unit.SECONDS,
        "As the day's figure.",
        columns=("handling_s", "completed"),
    ),
)

STAFFING = _catalogue(
    Metric("code", "城市代码", "City code", Unit.TEXT, "The city.", columns=("code",)),
    Metric(
        "hour",
        "时段",
        "Hour",
        Unit.TEXT,
        "Local start of the hour of the next day.",
        columns=("hour",),
    ),
    Metric(
        "forecast_calls",
        "预测呼入量",
        "Forecast calls",
        Unit.CALLS,
        "Calls expected in the hour: the same hour's received calls of the report's day.",
        columns=("received",),
    ),
    Metric(
        "agents_needed",
        "所需坐席数",
        "Agents needed",
        Unit.AGENTS,
        "Fewest agents that answer the target share (80% by default) of callers within T s: Erlang C, or Erlang A when the day measured abandonment (see the method).",
        columns=("received", "handling_s", "completed", "abandoned", "wait_s", "abandoned_wait_s"),
    ),
    Metric(
        "own_agents",
        "本市坐席数",
        "Own agents",
        Unit.AGENTS,
        "The city's own staffing (staffed seats).",
        columns=("seats",),
    ),
    Metric(
        "helper_seats",
        "需申请援助坐席",
        "Helper seats to request",
        Unit.AGENTS,
        "agents_needed − own_agents, when positive: the cloud seats to ask helper cities for.",
        columns=(
            "received",
            "handling_s",
            "completed",
            "abandoned",
            "wait_s",
            "abandoned_wait_s",
            "seats",
        ),
    ),
)

SECTIONS: dict[str, dict[str, Metric]] = {
    "summary": CITY,
    "helpers": HELPER,
    "hourly": HOURLY,
    "staffing": STAFFING,
}
"""The report's parts: each is a table in CSV and a sheet in XLSX."""

LEDGER_PAIR = _catalogue(
    Metric("lender", "支援城市代码", "Lender city code", Unit.TEXT,
           "The city whose agents served the host's calls.", columns=("lender",)),
    Metric("lender_name", "支援城市", "Lender city", Unit.TEXT, "The lender's name.",
           columns=("lender", "name")),
    Metric("host", "受援城市代码", "Host city code", Unit.TEXT,
           "The city whose calls the lender's agents served.", columns=("host",)),
    Metric("host_name", "受援城市", "Host city", Unit.TEXT, "The host's name.",
           columns=("host", "name")),
    Metric(
        "seat_hours_lent",
        "出借坐席时数",
        "Seat-hours lent",
        Unit.HOURS,
        "Time the lender's agents held the host's calls received in the range, in hours: from each offer to its accept, decline, expiry or revocation, from connection to completion or transfer, and the wrap-up after (to now for a call still in hand); what the lender's seat quota counts.",
        columns=("seat_s",),
    ),
    Metric(
        "seat_hours_received",
        "回借坐席时数",
        "Seat-hours received back",
        Unit.HOURS,
        "The same, the other way: time the host's agents held the lender's calls.",
        columns=("seat_s",),
    ),
    Metric(
        "balance_hours",
        "坐席时数差额",
        "Balance",
        Unit.HOURS,
        "seat_hours_lent − seat_hours_received: what the host owes the lender.",
        columns=("seat_s",),
    ),
    Metric(
        "calls_answered",
        "代接量",
        "Calls answered",
        Unit.CALLS,
        "The host's calls received in the range and answered by the lender's agents.",
        columns=("answered",),
    ),
    Metric(
        "calls_answered_back",
        "回援代接量",
        "Calls answered back",
        Unit.CALLS,
        "The lender's calls answered by the host's agents.",
        columns=("answered",),
    ),
    Metric(
        "lender_calls_while_lending",
        "出借期间本市考核量",
        "Lender's calls judged while lending",
        Unit.CALLS,
        "The lender's own calls received while it was a helper of an activated wave of the host's surge (to the surge's end), answered or abandoned after the short-abandon threshold.",
        columns=("lending_counted",),
    ),
    Metric(
        "lender_service_level_while_lending",
        "出借期间本市服务水平",
        "Lender's service level while lending",
        Unit.SHARE,
        "Of those, answered within T s ÷ lender_calls_while_lending: the report's service level over the lender's own calls while it lent (the simulator's own_service_level_while_lending); empty when none.",
        columns=("lending_in_time", "lending_counted"),
    ),
)  # fmt: skip

LEDGER_CITY = _catalogue(
    Metric("code", "城市代码", "City code", Unit.TEXT, "The city.", columns=("lender", "host")),
    Metric("name", "城市", "City", Unit.TEXT, "The city's name.", columns=("name",)),
    Metric(
        "seat_hours_lent",
        "出借坐席时数",
        "Seat-hours lent",
        Unit.HOURS,
        "Seat-hours the city's agents gave other cities (the sum of its pairs as lender).",
        columns=("seat_s",),
    ),
    Metric(
        "seat_hours_received",
        "受援坐席时数",
        "Seat-hours received",
        Unit.HOURS,
        "Seat-hours other cities' agents gave the city (the sum of its pairs as host).",
        columns=("seat_s",),
    ),
    Metric(
        "balance_hours",
        "坐席时数差额",
        "Balance",
        Unit.HOURS,
        "seat_hours_lent − seat_hours_received: positive, the province owes the city.",
        columns=("seat_s",),
    ),
    Metric(
        "calls_answered_for_others",
        "支援他市接通量",
        "Answered for other cities",
        Unit.CALLS,
        "Other cities' calls answered by the city's agents.",
        columns=("answered",),
    ),
    Metric(
        "calls_answered_by_others",
        "他市代接量",
        "Answered by other cities",
        Unit.CALLS,
        "The city's calls answered by other cities' agents.",
        columns=("answered",),
    ),
)  # fmt: skip

LEDGER_SECTIONS: dict[str, dict[str, Metric]] = {"pairs": LEDGER_PAIR, "cities": LEDGER_CITY}
"""The reciprocity ledger's parts (GET /reports/ledger): each a CSV table and an XLSX sheet."""

NOTES = (
    "A call belongs to the local day and hour it was received in, whatever time it ended.",
    "Waits run from receipt to connection (answered) or to hang-up (abandoned); handling runs "
    "from connection to completion.",
    "A helper city's call is one answered by an agent whose home city differs from the call's.",
    "Shares and averages are empty (null) when their denominator is zero.",
    "Staffing advice assumes tomorrow's hourly arrivals equal today's, with today's AHT (the "
    "default AHT when nothing was completed). With abandonments measured, callers' mean patience "
    "is estimated as the total waiting time of all callers ÷ abandonments (exponential patience, "
    "censored maximum likelihood) and Erlang A is used, whose service level counts abandoning "
    "callers as not answered; otherwise Erlang C.",
)
