/* test_main.c — runs the SDK's unit tests; the last line is the summary
 * CI greps for: "N passed, 0 failed". */
#include "testutil.h"

void test_codec(void);
void test_session(void);

int main(void)
{
    test_codec();
    test_session();
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}
