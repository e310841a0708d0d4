package com.findity.auth;

/** Run in a child JVM by LoadingTest: prints where libfindity was loaded from, or why not. */
public final class LoadProbe {
    public static void main(String[] args) {
        try {
            System.out.println("loaded " + FindityAuth.libraryPath() + " version " + FindityAuth.version());
        } catch (UnsatisfiedLinkError e) {
            System.out.println("failed " + e.getMessage());
            try {
                FindityAuth.clearCache();
            } catch (UnsatisfiedLinkError again) {
                System.out.println("again " + again.getMessage().length());
            }
        }
    }
}
