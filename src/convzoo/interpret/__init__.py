"""Looking inside trained convolutions: attribution, linear interpretation, kernel statistics, CKA."""
