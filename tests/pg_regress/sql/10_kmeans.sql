-- k-means on the Mall customers (annual income, spending score; k = 5), against scikit-learn's
-- KMeans(n_clusters=5, n_init=10) on the same points: inertia 44448.4554479337, sizes 81/39/35/23/22
-- (tests/reference/sklearn_kmeans.py).
SELECT cluster, size, array(SELECT round(c::numeric, 4) FROM unnest(centroid) c) AS centroid, round(inertia::numeric, 4) AS inertia
FROM segments.kmeans('models.mall', ARRAY['income', 'spending_score'], 5);
SELECT abs(sum(inertia) / 44448.4554479337 - 1) < 1e-6 AS inertia_matches_sklearn,
       array_agg(size ORDER BY size DESC) = ARRAY[81, 39, 35, 23, 22]::bigint[] AS sizes_match_sklearn
FROM segments.kmeans('models.mall', ARRAY['income', 'spending_score'], 5);

-- the same seed gives the same clusters; inertia is the within-cluster sum of squares, checked in SQL
WITH c AS (SELECT * FROM segments.kmeans('models.mall', ARRAY['income', 'spending_score'], 5, seed => 42))
SELECT abs(sum(c.inertia) - (SELECT sum(inertia) FROM segments.kmeans('models.mall', ARRAY['income', 'spending_score'], 5, seed => 42))) = 0 AS reproducible,
       abs(sum(c.inertia) - (
           SELECT sum(least_d) FROM (
               SELECT (SELECT min((m.income - k.centroid[1]) ^ 2 + (m.spending_score - k.centroid[2]) ^ 2) FROM c k) AS least_d
               FROM models.mall m) d)) < 1e-6 AS inertia_is_within_cluster_ss
FROM c;

-- the same rows in other orders (as a distributed table returns them) give the same clusters, to the bit
CREATE TABLE models.mall_reversed AS SELECT * FROM models.mall ORDER BY customer_id DESC;
CREATE TABLE models.mall_shuffled AS SELECT * FROM models.mall ORDER BY md5(customer_id::text);
SELECT t AS copy,
       (SELECT array_agg(array[size::float8, inertia] || centroid ORDER BY cluster) FROM segments.kmeans(t::regclass, ARRAY['income', 'spending_score'], 5, seed => 3, standardize => true))
     = (SELECT array_agg(array[size::float8, inertia] || centroid ORDER BY cluster) FROM segments.kmeans('models.mall', ARRAY['income', 'spending_score'], 5, seed => 3, standardize => true)) AS same_kmeans,
       (SELECT array_agg(array[inertia, silhouette] ORDER BY k) FROM segments.choose_k(t::regclass, ARRAY['income', 'spending_score'], 2, 6, sample_size => 50))
     = (SELECT array_agg(array[inertia, silhouette] ORDER BY k) FROM segments.choose_k('models.mall', ARRAY['income', 'spending_score'], 2, 6, sample_size => 50)) AS same_choose_k
FROM unnest(ARRAY['models.mall_reversed', 'models.mall_shuffled']) t;
DROP TABLE models.mall_reversed, models.mall_shuffled;

-- choosing k: inertia falls with k; the silhouette peaks at 5 on these data
SELECT k, round(inertia::numeric, 2) AS inertia, round(silhouette::numeric, 4) AS silhouette
FROM segments.choose_k('models.mall', ARRAY['income', 'spending_score'], 2, 7);

-- clusters become a segmentation: segment_of, explain, classify, to_sql and refresh all work on it
SELECT * FROM segments.segmentation_from_clusters('mall_clusters', 'models.mall', 'customer_id',
                                                  ARRAY['income', 'spending_score'], 5, standardize => false)
ORDER BY segment;
SELECT segments.segment_of(m, 'mall_clusters') AS segment, count(*) FROM models.mall m GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE segments.classify(m, segments.ruleset('mall_clusters')) = segments.segment_of(m, 'mall_clusters')) AS classify_agrees
FROM models.mall m;
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM models.mall t WHERE (%s) IS DISTINCT FROM segments.segment_of(t, ''mall_clusters'')',
                   segments.to_sql('mall_clusters')) INTO n;
    RAISE NOTICE 'to_sql disagreements: %', n;
END $$;
SELECT e ->> 'segment' AS segment, e -> 'rule' -> 'nearest_cluster' AS nearest, e ->> 'pass' AS pass
FROM models.mall m, jsonb_array_elements(segments.explain(m, 'mall_clusters') -> 'segments') e
WHERE m.customer_id = 1;
SELECT * FROM segments.refresh('mall_clusters');

-- standardized features: centroids are reported in the features' own units
SELECT cluster, size FROM segments.kmeans('models.mall', ARRAY['age', 'income', 'spending_score'], 4, standardize => true);

-- NULL features are skipped with a NOTICE; bad input is an error
CREATE TABLE models.sparse AS SELECT * FROM models.mall;
UPDATE models.sparse SET income = NULL WHERE customer_id <= 3;
SELECT sum(size) AS clustered FROM segments.kmeans('models.sparse', ARRAY['income', 'spending_score'], 3);
SELECT * FROM error_of($$SELECT * FROM segments.kmeans('models.mall', ARRAY['income', 'nope'], 3)$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.kmeans('models.mall', ARRAY['genre'], 3)$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.kmeans('models.mall', ARRAY['income'], 500)$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.kmeans('models.mall', ARRAY['income'], 0)$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.choose_k('models.mall', ARRAY['income'], 1, 3)$$);
