"""Reads of an A/B test: each variant's figures from its real messages (one grouped query), and
the verdict — who leads on the test's metric, how sure that is, and the same said in words.

How sure: for two variants a two-proportion z-test (the confidence is 1 − its two-sided p-value);
for three or four, each variant's probability to beat all the others, from Beta posteriors
(uniform prior) drawn by a Monte Carlo with a fixed seed, so the same figures always give the
same answer. A lead is significant at 95 %; below that the words say it may be chance.

Counted: messages sent (state `sent`); an open is `opened_at` (the first human open — machine
opens never set it), a click `clicked_at`, each only when it came within the test's wait after
the message was sent. So a variant sent later (a send-time variant) is judged over the same
span as the others, and the figures shown after the decision are the ones it was made on.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from django.db import connection
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from campaigns.broadcast_models import AbMetric, Broadcast, BroadcastTest
from campaigns.models import MessageSource

SIGNIFICANT = 0.95
MONTE_CARLO_DRAWS = 20_000
MONTE_CARLO_SEED = 20  # fixed: a verdict never changes between two looks at the same figures


@dataclass
class VariantFigures:
    """One variant's test messages (or, `rest`, the winner's messages to the rest)."""

    letter: str
    messages: int = 0  # made, whatever became of them
    sent: int = 0
    opened: int = 0  # within the wait after sending
    clicked: int = 0
    opened_and_clicked: int = 0

    def parts(self, metric: str) -> tuple[int, int]:
        """(successes, trials) of the metric: opens or clicks of the messages sent, or the
        openers who clicked (click-to-open)."""
        if metric == AbMetric.CLICKS:
            return self.clicked, self.sent
        if metric == AbMetric.CLICK_TO_OPEN:
            return self.opened_and_clicked, self.opened
        return self.opened, self.sent

    def rate(self, metric: str) -> float | None:
        successes, trials = self.parts(metric)
        return successes / trials if trials else None


@dataclass
class Figures:
    variants: list[VariantFigures]
    rest: VariantFigures | None = None  # the winner's messages to the rest, once sent


def figures(*, test: BroadcastTest, letters: list[str]) -> Figures:
    """Every variant's figures (and the rest's) in one grouped scan of the broadcast's messages."""
    found = {letter: VariantFigures(letter) for letter in letters}
    rest: VariantFigures | None = None
    window = dt.timedelta(hours=test.wait_hours)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT data ->> 'variant', data ? 'rest', count(*),
                   count(*) FILTER (WHERE state = 'sent'),
                   count(*) FILTER (WHERE state = 'sent' AND opened_at <= sent_at + %(window)s::interval),
                   count(*) FILTER (WHERE state = 'sent' AND clicked_at <= sent_at + %(window)s::interval),
                   count(*) FILTER (WHERE state = 'sent' AND opened_at <= sent_at + %(window)s::interval
                                      AND clicked_at <= sent_at + %(window)s::interval)
            FROM campaigns_message
            WHERE workspace_id = %(workspace)s AND source = %(source)s
            GROUP BY 1, 2
            """,
            {
                "window": str(window.total_seconds()) + " seconds",
                "workspace": test.workspace_id,
                "source": str(MessageSource.broadcast(test.broadcast_id)),
            },
        )
        for letter, is_rest, made, sent, opened, clicked, both in cursor.fetchall():
            row = VariantFigures(letter or "", made, sent, opened, clicked, both)
            if is_rest:
                rest = row
            elif letter in found:
                found[letter] = row
    return Figures(variants=[found[letter] for letter in letters], rest=rest)


def z_test_confidence(s1: int, n1: int, s2: int, n2: int) -> float | None:
    """1 − the two-sided p-value of a pooled two-proportion z-test; None when it cannot be
    computed (a variant with nothing to count, or no variance: both 0 % or both 100 %)."""
    if not n1 or not n2:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return None
    z = (s1 / n1 - s2 / n2) / spread
    return 1 - math.erfc(abs(z) / math.sqrt(2))


def chance_to_beat_all(parts: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Each variant's probability to have the highest true rate, from Beta(1 + s, 1 + n − s)
    posteriors: a Monte Carlo with a fixed seed (deterministic). Ties go to neither."""
    rng = random.Random(MONTE_CARLO_SEED)  # noqa: S311 — statistics, not secrets
    letters = list(parts)
    wins = dict.fromkeys(letters, 0)
    for _draw in range(MONTE_CARLO_DRAWS):
        draws = [rng.betavariate(1 + s, 1 + n - s) for s, n in parts.values()]
        best = max(draws)
        if draws.count(best) == 1:
            wins[letters[draws.index(best)]] += 1
    return {letter: wins[letter] / MONTE_CARLO_DRAWS for letter in letters}


@dataclass(frozen=True)
class Verdict:
    leader: str  # the variant with the best rate; "" when none leads (no data, or a tie)
    confidence: float | None  # 0–1: the z-test's, or the leader's probability to beat all
    significant: bool
    words: str
    chances: dict[str, float] = field(default_factory=dict)  # 3–4 variants: each one's probability to be best


def percent(value: float, digits: int = 1) -> str:
    return "%s %%" % number_format(100 * value, digits)  # noqa: UP031 — a localised number


def metric_rate_name(metric: str) -> str:
    names: dict[str, str] = {
        AbMetric.OPENS: _("open rate"),
        AbMetric.CLICKS: _("click rate"),
        AbMetric.CLICK_TO_OPEN: _("click-to-open rate"),
    }
    return names.get(metric, metric)


def _confidence_shown(confidence: float) -> str:
    # 99.96 % would round to a certainty the test cannot give.
    return percent(min(confidence, 0.999))


def verdict(found: Figures, metric: str) -> Verdict:
    """Who leads, how sure it is, and the same in words (in the active language)."""
    parts = {v.letter: v.parts(metric) for v in found.variants}
    rates = {letter: s / n for letter, (s, n) in parts.items() if n}
    name = metric_rate_name(metric)
    if not rates:
        return Verdict("", None, False, _("Not enough data yet: no variant has anything to count for the %(metric)s.")
                       % {"metric": name})  # fmt: skip
    best = max(rates.values())
    leaders = [letter for letter, rate in rates.items() if rate == best]
    if len(leaders) > 1:
        return Verdict("", None, False, _("No difference: the variants have the same %(metric)s (%(rate)s).")
                       % {"metric": name, "rate": percent(best)})  # fmt: skip
    leader = leaders[0]
    values = {"leader": leader, "metric": name, "rate": percent(best), "needed": percent(SIGNIFICANT, 0)}
    if len(parts) == 2:
        other = next(letter for letter in parts if letter != leader)
        (s1, n1), (s2, n2) = parts[leader], parts[other]
        confidence = z_test_confidence(s1, n1, s2, n2)
        values |= {"other": other, "other_rate": percent(rates[other]) if other in rates else "—"}
        if confidence is None:
            return Verdict(leader, None, False, _(
                "Not enough data: %(leader)s leads with %(rate)s against %(other_rate)s for %(other)s "
                "(%(metric)s), but %(other)s has nothing to compare yet.") % values)  # fmt: skip
        values["confidence"] = _confidence_shown(confidence)
        if confidence >= SIGNIFICANT:
            words = _(
                "%(leader)s is better: %(rate)s against %(other_rate)s for %(other)s (%(metric)s), "
                "with %(confidence)s confidence (two-proportion z-test)."
            )
        else:
            words = _(
                "The difference is not significant: %(leader)s leads with %(rate)s against %(other_rate)s "
                "for %(other)s (%(metric)s), but the confidence is %(confidence)s, below the %(needed)s "
                "needed — it may be chance."
            )
        return Verdict(leader, confidence, confidence >= SIGNIFICANT, words % values)
    chances = chance_to_beat_all(parts)
    confidence = chances[leader]
    values["confidence"] = _confidence_shown(confidence)
    if confidence >= SIGNIFICANT:
        words = _(
            "%(leader)s is the best with %(rate)s (%(metric)s): its probability to beat all the others "
            "is %(confidence)s."
        )
    else:
        words = _(
            "The difference is not significant: %(leader)s leads with %(rate)s (%(metric)s), but its "
            "probability to beat all the others is %(confidence)s, below the %(needed)s needed — it may be chance."
        )
    return Verdict(leader, confidence, confidence >= SIGNIFICANT, words % values, chances)


def ab_test_of(broadcast: Broadcast) -> BroadcastTest | None:
    return BroadcastTest.objects.filter(workspace_id=broadcast.workspace_id, broadcast=broadcast).first()
