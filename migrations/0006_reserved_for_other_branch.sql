-- Placeholder on branch rec only: migration numbers have no gaps, and 0006 belongs to another
-- branch. Delete this file when merging (that branch brings the real 0006).
SELECT 1;
