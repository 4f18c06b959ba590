-- Placeholder on branch rec only: migration numbers have no gaps, and 0007 belongs to another
-- branch. Delete this file when merging (that branch brings the real 0007).
SELECT 1;
