"""The soak, short: every feature behind a real waitress on loopback, many
concurrent browsers for a few seconds, then an audit of every Redis key and
of the server's memory. ``SESSION_SUITE_SOAK_SECONDS=60`` makes it long;
``python -m bench.soak`` runs it with a printed report."""

import os
import pytest
import redis

from bench.soak import (
    ENV_SECONDS,
    SHORT_CLIENTS,
    SHORT_SECONDS,
    soak,
    text_report,
)
from bench.soakapp import MAX_SESSIONS
from bench.soakaudit import CLAIM_TTL
from bench.soakclient import MIX


@pytest.fixture(scope='module')
def result(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    seconds = float(os.environ.get(ENV_SECONDS) or SHORT_SECONDS)
    return soak(seconds, SHORT_CLIENTS, redis_url=redis_server.url)


@pytest.fixture
def report(result):
    """What to show when a check fails: the whole report."""
    return '\n' + text_report(result)


def test_every_request_is_answered_without_a_server_error(result, report):
    assert result.server_5xx == 0, report
    assert result.tally.errors == 0, report
    assert not result.server_errors, report


def test_every_answer_is_the_one_expected(result, report):
    assert not result.tally.surprises, report


def test_no_write_and_no_session_is_lost(result, report):
    tally = result.tally
    assert tally.lost_writes == tally.phantom_writes == 0, report
    assert tally.lost_sessions == 0, report


def test_the_whole_mix_ran(result, report):
    tally = result.tally
    # requests are counted by what they were for: a "relogin" is a logout
    # and a login; browsers whose session ended come back ("ended")
    kinds = set(MIX) - {'relogin'} | {'logout', 'ended', 'replay'}
    assert kinds <= set(tally.operations), report
    assert tally.redeemed == tally.minted > 0, report
    assert set(tally.ended_told) >= {'displaced', 'revoked', 'logout'}, report


def test_used_tokens_are_refused(result, report):
    tally = result.tally
    assert tally.replays_accepted == 0, report
    assert tally.replays_refused == tally.redeemed, report


def test_every_key_has_a_ttl(result, report):
    assert result.census.keys > 0
    assert result.census.no_ttl == [], report
    assert result.census.kinds['unknown'] == 0, report


def test_the_index_finds_exactly_the_live_sessions(result, report):
    census = result.census
    sessions = census.kinds['user session'] + census.kinds['shared']
    assert census.entries == sessions, report
    assert census.dangling == census.orphans == 0, report
    # only users with more than one session have an index key
    assert census.kinds['index'] == census.users < sessions, report


def test_every_session_and_marker_is_accounted_for(result, report):
    kinds, expected = result.census.kinds, result.expected
    assert kinds['anonymous session'] == expected['anonymous'], report
    assert kinds['user session'] == expected['users'], report
    assert kinds['ended marker'] == expected['ends'], report
    shared = kinds['shared'] + kinds['shared marker']
    assert shared == result.tally.shared_logins, report
    assert kinds['shared'] <= MAX_SESSIONS, report


def test_token_claims_are_only_those_of_live_tokens(result, report):
    census = result.census
    assert census.kinds['token claim'] <= result.recent_claims, report
    assert 0 < census.claim_ttl_max <= CLAIM_TTL, report


def test_memory_is_stable(result, report):
    judged = [trend for trend in result.trends if trend.limit is not None]
    assert judged, report
    assert all(trend.ok for trend in judged), report


def test_the_report_says_pass(result, report):
    assert result.ok, report
    assert report.endswith('\nPASS')
