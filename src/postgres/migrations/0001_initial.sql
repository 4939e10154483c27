-- Version 1: the whole Coordinate object model.
--
-- Names are bytea: they sort byte-wise and may hold any character,
-- NUL included, which text cannot. Attempt statuses are the ordinals of
-- AttemptStatus (0 pending, 1 expired, 2 finished, 3 failed, 4 retryable).
-- Durations are integer microseconds; unset times are NULL. No column
-- defaults to the database clock: every time comes from the injected clock.

CREATE TABLE namespace (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name bytea NOT NULL UNIQUE
);

CREATE TABLE work_spec (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_id          bigint NOT NULL REFERENCES namespace (id) ON DELETE CASCADE,
    name                  bytea NOT NULL,
    definition            jsonb NOT NULL,
    priority              bigint NOT NULL,
    weight                bigint NOT NULL,
    paused                boolean NOT NULL,
    continuous            boolean NOT NULL,
    can_be_continuous     boolean NOT NULL,
    min_memory_gb         double precision NOT NULL,
    interval_us           bigint NOT NULL,
    next_continuous       timestamptz,
    max_running           bigint NOT NULL,
    max_attempts_returned bigint NOT NULL,
    max_retries           bigint NOT NULL,
    next_work_spec_name   bytea NOT NULL,
    runtime               bytea NOT NULL,
    UNIQUE (namespace_id, name)
);

CREATE TABLE worker (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_id bigint NOT NULL REFERENCES namespace (id) ON DELETE CASCADE,
    name         bytea NOT NULL,
    parent_id    bigint REFERENCES worker (id) ON DELETE SET NULL,
    active       boolean NOT NULL,
    mode         bytea NOT NULL,
    data         jsonb NOT NULL,
    expiration   timestamptz NOT NULL,
    last_update  timestamptz NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE INDEX worker_parent ON worker (parent_id) WHERE parent_id IS NOT NULL;

-- active_attempt_id has no foreign key: attempts are only ever deleted
-- together with their unit (cascade), so it cannot dangle, and leaving the
-- check out spares every attempt hand-out a lookup and a row lock.
CREATE TABLE work_unit (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_spec_id      bigint NOT NULL REFERENCES work_spec (id) ON DELETE CASCADE,
    name              bytea NOT NULL,
    data              jsonb NOT NULL,
    priority          double precision NOT NULL,
    not_before        timestamptz,
    active_attempt_id bigint,
    UNIQUE (work_spec_id, name)
);
-- Units without an active attempt, in execution order.
CREATE INDEX work_unit_idle ON work_unit (work_spec_id, priority DESC, name)
    WHERE active_attempt_id IS NULL;

-- work_spec_id is denormalised from the unit so that lazy expiry and the
-- pending counts of a spec read one small partial index.
CREATE TABLE attempt (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_unit_id    bigint NOT NULL REFERENCES work_unit (id) ON DELETE CASCADE,
    work_spec_id    bigint NOT NULL,
    worker_id       bigint NOT NULL REFERENCES worker (id) ON DELETE CASCADE,
    status          smallint NOT NULL,
    data            jsonb NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz,
    expiration_time timestamptz NOT NULL,
    on_active_list  boolean NOT NULL
);
CREATE INDEX attempt_unit ON attempt (work_unit_id);
CREATE INDEX attempt_worker ON attempt (worker_id);
CREATE INDEX attempt_pending ON attempt (work_spec_id, expiration_time) WHERE status = 0;
