-- Tier 4 - candidates. Promotes the seeded candidates to active ownership and
-- activates the responsibility axis: this is where the gap closes (210 -> 0).
UPDATE one_roof.ownership SET status = 'active' WHERE status = 'candidate';
UPDATE one_roof.axes SET active = true WHERE axis = 'responsibility';
