-- Behavioral conditions: rules over an account's rows in related tables (events, NPS answers, tickets),
-- declared once per segmentation, checked against the same questions written by hand in SQL (LEFT JOIN of
-- GROUP BY aggregates), explained, exported by to_sql, and kept current by track() when events arrive.
SET TimeZone = 'UTC';
CREATE SCHEMA beh;
CREATE TABLE beh.accounts (id integer PRIMARY KEY, name text NOT NULL, renewal_date date);
CREATE TABLE beh.events (id bigserial PRIMARY KEY, account_id integer, type text, feature text, at timestamptz);
CREATE INDEX ON beh.events (account_id, at);
CREATE TABLE beh.nps_responses (id bigserial PRIMARY KEY, account_id integer NOT NULL, score smallint, answered_at timestamptz NOT NULL);
CREATE TABLE beh.tickets (id bigserial PRIMARY KEY, account_id integer NOT NULL, status text NOT NULL, opened_at timestamptz);
INSERT INTO beh.accounts SELECT i, 'Account ' || i, DATE '2025-03-01' + (i * 17) % 200 FROM generate_series(1, 600) i;
-- 30,000 events over 120 days before 2025-03-01: logins and feature use, more for some accounts than others
INSERT INTO beh.events (account_id, type, feature, at)
SELECT CASE WHEN g % 97 = 0 THEN NULL ELSE 1 + (g * g) % 500 END,
       CASE WHEN g % 3 = 0 THEN 'feature' ELSE 'login' END,
       CASE WHEN g % 3 = 0 THEN (ARRAY['export', 'report', 'share'])[1 + g % 5 % 3] END,
       -- every seventh account went quiet three weeks ago
       timestamptz '2025-03-01 00:00+00' - ((g * 7919) % (120 * 24)) * interval '1 hour'
           - CASE WHEN (1 + (g * g) % 500) % 7 = 0 THEN interval '21 days' ELSE interval '0' END
FROM generate_series(1, 30000) g;
-- NPS answers: several per account, some accounts none; tickets: open and closed
INSERT INTO beh.nps_responses (account_id, score, answered_at)
SELECT 1 + (g * 13) % 450, CASE WHEN g % 23 = 0 THEN NULL ELSE (g * 7) % 11 END,
       timestamptz '2025-01-01' + (g % 59) * interval '1 day' + g * interval '1 second'
FROM generate_series(1, 1500) g;
INSERT INTO beh.tickets (account_id, status, opened_at)
SELECT 1 + (g * 31) % 300, CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END, timestamptz '2025-02-01' + g * interval '1 hour'
FROM generate_series(1, 900) g;

INSERT INTO segments.segmentation (name, source, key_column) VALUES ('health', 'beh.accounts', 'id');
INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column, description) VALUES
  ('health', 'events', 'beh.events', 'account_id', 'at', 'Product events'),
  ('health', 'nps', 'beh.nps_responses', 'account_id', 'answered_at', 'NPS answers'),
  ('health', 'tickets', 'beh.tickets', 'account_id', 'opened_at', 'Support tickets');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  -- "power users who log in daily": at least 20 logins in the last 30 days
  ('health', 'Power users', 10, '{"related": "events", "agg": "count", "where": {"attr": "type", "op": "=", "value": "login"},
                                  "within": "30 days", "as_of": "2025-03-01", "op": ">=", "value": 20}'),
  -- the At-Risk segment of the seed material: a health score from usage, NPS, tickets and renewal proximity
  ('health', 'At-Risk', 20,
   '{"points": [{"rule": {"related": "events", "agg": "count", "within": "30 days", "as_of": "2025-03-01", "op": ">=", "value": 10}, "points": 40},
                {"rule": {"related": "nps", "agg": "avg", "attr": "score", "last": 2, "op": "<", "value": 7}, "points": -30},
                {"rule": {"related": "tickets", "agg": "count", "where": {"attr": "status", "op": "=", "value": "open"}, "op": ">=", "value": 3}, "points": -25},
                {"rule": {"attr": "renewal_date", "op": "within_next", "value": "60 days", "as_of": "2025-03-01"}, "points": -10}],
     "op": "<", "value": 0}'),
  -- "no export feature event in 90 days"
  ('health', 'Never exports', 30, '{"related": "events", "agg": "count", "where": {"attr": "feature", "op": "=", "value": "export"},
                                    "within": "90 days", "as_of": "2025-03-01", "op": "=", "value": 0}'),
  -- last seen: the latest event more than 14 days before as-of (an account without events has no last event)
  ('health', 'Dormant', 40, '{"related": "events", "agg": "last", "attr": "at", "op": "<", "value": "2025-02-15"}');

-- the same assignment by hand: aggregates per account joined to the accounts, then CASE
CREATE VIEW beh.by_hand AS
WITH logins AS (SELECT account_id, count(*) AS n FROM beh.events
                WHERE type = 'login' AND at BETWEEN timestamptz '2025-01-30' AND timestamptz '2025-03-01' GROUP BY 1),
     active AS (SELECT account_id, count(*) AS n FROM beh.events
                WHERE at BETWEEN timestamptz '2025-01-30' AND timestamptz '2025-03-01' GROUP BY 1),
     exports AS (SELECT account_id, count(*) AS n FROM beh.events
                 WHERE feature = 'export' AND at BETWEEN timestamptz '2024-12-01' AND timestamptz '2025-03-01' GROUP BY 1),
     last_seen AS (SELECT account_id, max(at) AS at FROM beh.events GROUP BY 1),
     last2 AS (SELECT account_id, avg(score) AS score FROM
                 (SELECT account_id, score, row_number() OVER (PARTITION BY account_id ORDER BY answered_at DESC, score DESC NULLS LAST) AS k
                  FROM beh.nps_responses) x WHERE k <= 2 GROUP BY 1),
     open_tickets AS (SELECT account_id, count(*) AS n FROM beh.tickets WHERE status = 'open' GROUP BY 1)
SELECT a.id, CASE
    WHEN coalesce(l.n, 0) >= 20 THEN 'Power users'
    WHEN (CASE WHEN coalesce(ac.n, 0) >= 10 THEN 40 ELSE 0 END) + (CASE WHEN n2.score < 7 THEN -30 ELSE 0 END)
         + (CASE WHEN coalesce(t.n, 0) >= 3 THEN -25 ELSE 0 END)
         + (CASE WHEN a.renewal_date BETWEEN DATE '2025-03-01' AND DATE '2025-03-01' + 60 THEN -10 ELSE 0 END) < 0 THEN 'At-Risk'
    WHEN coalesce(e.n, 0) = 0 THEN 'Never exports'
    WHEN s.at < timestamptz '2025-02-15' THEN 'Dormant'
    ELSE 'Unsegmented' END AS segment
FROM beh.accounts a
LEFT JOIN logins l ON l.account_id = a.id LEFT JOIN active ac ON ac.account_id = a.id
LEFT JOIN exports e ON e.account_id = a.id LEFT JOIN last_seen s ON s.account_id = a.id
LEFT JOIN last2 n2 ON n2.account_id = a.id LEFT JOIN open_tickets t ON t.account_id = a.id;

SELECT h.segment, count(*) AS accounts, count(*) FILTER (WHERE segments.segment_of(a, 'health') = h.segment) AS segment_of_agrees
FROM beh.accounts a JOIN beh.by_hand h USING (id) GROUP BY 1 ORDER BY 1;
SELECT segments.refresh('health');
SELECT count(*) AS refresh_disagrees FROM beh.by_hand h
LEFT JOIN segments.membership m ON m.segmentation = 'health' AND upper_inf(m.valid) AND m.account_key = h.id::text
WHERE m.segment IS DISTINCT FROM h.segment;
DO $$
DECLARE bad bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM beh.accounts t JOIN beh.by_hand h USING (id) WHERE (%s) IS DISTINCT FROM h.segment',
                   segments.to_sql('health')) INTO bad;
    RAISE NOTICE 'to_sql disagrees with the hand-written SQL on % accounts', bad;
END $$;
-- to_query: the same assignment as one query that reads each related table once, grouped by the key (refresh
-- runs it for a segmentation with behavioral conditions)
DO $$
DECLARE bad bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s) q JOIN beh.by_hand h USING (id) WHERE q.segments_segment IS DISTINCT FROM h.segment',
                   segments.to_query('health')) INTO bad;
    RAISE NOTICE 'to_query disagrees with the hand-written SQL on % accounts', bad;
END $$;
SELECT segment, accounts, matching, shadowed FROM segments.coverage('health') ORDER BY segment;

-- explain shows each aggregate, the window it covered and the rows it took
SELECT jsonb_pretty(segments.explain(a, 'health') -> 'segments' -> 0 -> 'rule') FROM beh.accounts a WHERE id = 2;
SELECT jsonb_pretty(segments.explain(a, 'health') -> 'segments' -> 1 -> 'rule' -> 'points' -> 1) FROM beh.accounts a WHERE id = 14;
SELECT segments.explain(a, 'health') -> 'segments' -> 3 -> 'rule' AS dormant FROM beh.accounts a WHERE id = 600;

-- to_sql: each condition is a correlated subquery that reads the outer row's key in a FROM-less subquery
SELECT substr(segments.to_sql('health'), 1, 620) AS to_sql_start;

-- track(): new events move accounts in the same transaction; so do deleted ones
SELECT segments.track('health');
SELECT segment FROM segments.current_membership WHERE segmentation = 'health' AND account_key = '600';
INSERT INTO beh.events (account_id, type, at) SELECT 600, 'login', timestamptz '2025-02-20' + g * interval '1 hour' FROM generate_series(1, 25) g;
SELECT segment FROM segments.current_membership WHERE segmentation = 'health' AND account_key = '600';
DELETE FROM beh.events WHERE account_id = 600 AND type = 'login';
SELECT segment FROM segments.current_membership WHERE segmentation = 'health' AND account_key = '600';
UPDATE beh.tickets SET status = 'open' WHERE account_id = 14;
SELECT count(*) AS tracked_disagrees FROM beh.by_hand h
LEFT JOIN segments.membership m ON m.segmentation = 'health' AND upper_inf(m.valid) AND m.account_key = h.id::text
WHERE m.segment IS DISTINCT FROM h.segment;
SELECT segments.untrack('health');

-- a related source read by rules cannot be removed or renamed; the rules name it
SELECT * FROM error_of($$DELETE FROM segments.related_source WHERE segmentation = 'health' AND name = 'nps'$$);
SELECT * FROM error_of($$UPDATE segments.related_source SET name = 'answers' WHERE segmentation = 'health' AND name = 'nps'$$);
-- declarations are checked: columns, the time column's type, a key comparable with the account key
SELECT * FROM error_of($$INSERT INTO segments.related_source (segmentation, name, relation, key_column) VALUES ('health', 'x', 'beh.events', 'nope')$$);
SELECT * FROM error_of($$INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column) VALUES ('health', 'x', 'beh.events', 'account_id', 'type')$$);
SELECT * FROM error_of($$INSERT INTO segments.related_source (segmentation, name, relation, key_column) VALUES ('health', 'x', 'beh.events', 'type')$$);
CREATE VIEW beh.recent_events AS SELECT * FROM beh.events WHERE at > '2025-01-01';
SELECT * FROM error_of($$INSERT INTO segments.related_source (segmentation, name, relation, key_column) VALUES ('health', 'x', 'beh.recent_events', 'account_id')$$);
INSERT INTO segments.related_source (segmentation, name, relation, key_column) VALUES ('health', 'untimed', 'beh.tickets', 'account_id');

-- save-time errors with the JSON path and the valid choices
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "logins", "agg": "count", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "median", "attr": "at", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "sum", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "sum", "attr": "type", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "attr": "nope", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "where": {"attr": "plan", "op": "=", "value": "x"}, "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "where": {"related": "nps", "agg": "count", "op": ">", "value": 0}, "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "untimed", "agg": "count", "within": "30 days", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "within": "a month", "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "last": 0, "op": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "count", "op": ">", "value": "many"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('health', 'bad', '{"related": "events", "agg": "last", "attr": "at", "op": "within", "value": "3 days"}')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"related": "events", "agg": "count", "op": ">", "value": 1}', 'beh.accounts')$$);
