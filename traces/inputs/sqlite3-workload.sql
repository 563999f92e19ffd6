CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, tag TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)
INSERT INTO t SELECT i, printf('name-%d-%s', i, hex(randomblob(8))), (i * 7919) % 1000 / 10.0, 'tag' || (i % 37) FROM n;
CREATE INDEX t_tag ON t(tag, score);
SELECT tag, count(*), avg(score), max(length(name)) FROM t GROUP BY tag ORDER BY 3 DESC LIMIT 5;
SELECT group_concat(name, ',') FROM (SELECT name FROM t WHERE score > 95 ORDER BY name LIMIT 200);
UPDATE t SET name = name || '-x' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(name)) FROM t;
