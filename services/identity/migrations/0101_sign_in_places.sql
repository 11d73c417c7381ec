-- Where each account has signed in successfully: (account, client address) pairs. A sign-in from
-- a known place is throttled on its own counter, so neither guessing from elsewhere (the account's
-- lockout) nor guessing from a shared address (the address's slowdown) locks its owner out.
CREATE TABLE sign_in_places (
    account        TEXT NOT NULL,            -- the normalized email
    address        TEXT NOT NULL,
    last_signed_in BIGINT NOT NULL,          -- epoch ms; purged after 90 days
    PRIMARY KEY (account, address)
);
CREATE INDEX sign_in_places_age ON sign_in_places (last_signed_in);
