package githubhook

// FirstStep is what a request may reserve before its bytes arrive.
const FirstStep = firstStep
