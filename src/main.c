/* main: flags -> config -> run (wired up by the proxy core). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "lbproxy: not yet wired\n");
    return 1;
}
