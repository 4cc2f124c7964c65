-- One database per service: agencies never share storage with each other or with the ledger.
CREATE DATABASE bank;
CREATE DATABASE tax;
CREATE DATABASE land;
CREATE DATABASE transport;
CREATE DATABASE ledger;
