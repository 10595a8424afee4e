-- Generated SQL never collides with a source's column names and never breaks on %, quotes or odd
-- identifiers: a table whose columns are named t (the alias generated statements used to give the source),
-- "id%s" (a format() directive) and "it's" is refreshed, tracked row by row and in bulk, covered, measured
-- and previewed, and every figure agrees with plain SQL.
SET client_min_messages = warning;
CREATE SCHEMA "odd ""names""";
CREATE TABLE "odd ""names"""."acc%s" ("id%s" int PRIMARY KEY, t int NOT NULL, "it's" numeric, churned boolean NOT NULL);
INSERT INTO "odd ""names"""."acc%s" SELECT i, i % 3, i * 10, i % 7 = 0 FROM generate_series(1, 300) i;
INSERT INTO segments.segmentation (name, source, key_column, arr_column, churned_column)
VALUES ('odd %s ''name''', '"odd ""names"""."acc%s"', 'id%s', 'it''s', 'churned');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
    ('odd %s ''name''', 'zero', 1, '{"attr": "t", "op": "=", "value": 0}'),
    ('odd %s ''name''', 'one %s', 2, '{"attr": "t", "op": "=", "value": 1}');

SELECT * FROM segments.refresh('odd %s ''name''');
SELECT segment, accounts, churn_rate = (SELECT avg(churned::int) FROM "odd ""names"""."acc%s" WHERE t = 0) AS churn_agrees
FROM segments.health('odd %s ''name''') WHERE segment = 'zero';
SELECT segment, accounts, matching FROM segments.coverage('odd %s ''name''') ORDER BY segment;
SELECT count(*) AS would_move FROM segments.preview('odd %s ''name''', 'zero', '{"attr": "t", "op": "<=", "value": 1}');

-- tracked: a small statement (row by row) and a large one (set-based)
SELECT segments.track('odd %s ''name''');
UPDATE "odd ""names"""."acc%s" SET t = 0 WHERE "id%s" <= 5;
UPDATE "odd ""names"""."acc%s" SET t = 1 WHERE "id%s" > 100;
SELECT m.segment, count(*) AS accounts,
       count(*) = count(*) FILTER (WHERE m.segment = CASE a.t WHEN 0 THEN 'zero' WHEN 1 THEN 'one %s' ELSE 'Unsegmented' END)
           AS agrees_with_sql
FROM segments.current_membership m JOIN "odd ""names"""."acc%s" a ON a."id%s"::text = m.account_key
WHERE m.segmentation = 'odd %s ''name''' GROUP BY 1 ORDER BY 1;

SELECT segments.untrack('odd %s ''name''');
DELETE FROM segments.segmentation WHERE name = 'odd %s ''name''';
DROP SCHEMA "odd ""names""" CASCADE;
