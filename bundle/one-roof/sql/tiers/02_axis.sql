-- Tier 2 - responsibility axis. Registers the axis, inactive: still effect-inert
-- (no ownership row reads it yet). Gate-free.
INSERT INTO one_roof.axes (axis, description, active)
VALUES ('responsibility', 'who answers for, works on, is consulted or informed about a collection', false);
