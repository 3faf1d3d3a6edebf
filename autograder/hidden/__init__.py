"""Hidden test material of the autograder: never released, never readable by a judged worker."""
