/* empty_main.c — the baseline image (C runtime only) that `make size`
 * subtracts from size_main's to attribute flash to the SDK. */
int main(void);
int main(void) { return 0; }
