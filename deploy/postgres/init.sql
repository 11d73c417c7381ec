-- A database per service (ARCHITECTURE.md); each service migrates its own at start.
CREATE DATABASE identity;
CREATE DATABASE catalog;
CREATE DATABASE showtimes;
CREATE DATABASE booking;
CREATE DATABASE payments;
CREATE DATABASE streaming;
CREATE DATABASE reviews;
CREATE DATABASE loyalty;
CREATE DATABASE notifications;
CREATE DATABASE analytics;
CREATE DATABASE recommendations;
CREATE DATABASE backup;
