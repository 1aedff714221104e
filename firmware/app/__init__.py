# The badge application: sans-I/O modules with one job each. Nothing here touches hardware (see hal/).
