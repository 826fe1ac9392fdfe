-- The engine lease (cluster mode): the one row names the node that decides and the epoch its
-- commits are fenced with. expires_at is the database's clock, in unix milliseconds.
CREATE TABLE engine_lease (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
